// The discussion: comments with @mentions and attachments.
import { missing } from "./actions.js";
import { ApiError, call, errorBox, randomKey } from "./api.js";
import { $, el, fill } from "./dom.js";
import { joined, when } from "./format.js";
import { openRequest, signOut } from "./hooks.js";
import { t, word } from "./i18n.js";
import { state } from "./state.js";
import { authHeaders } from "./token.js";

// ---- discussion (issue 17): comments with @mentions, attachments --------
// The API takes the people to tell as a list (docs/api.md): the page sends every
// "@id" of the text that names someone on the request.
export const DISCUSS_API = {
  comment: "POST /v1/requests/{id}/comments",
  upload: "POST /v1/attachments",
  download: "GET /v1/attachments/{id}",
};

// Everyone on the request (requester, approvers, people copied, whoever acted), not me.
export function peopleOnRequest(view) {
  const me = state.me ? state.me.id : null;
  const found = [view.requester, ...view.current_approvers, ...(view.cc || [])];
  for (const stage of view.stages) {
    for (const slot of stage.slots || []) found.push(...(slot.actors || []).map((a) => a.user));
  }
  for (const e of view.history) if (e.actor !== "system") found.push(e.actor);
  return [...new Set(found)].filter((u) => u && u !== me).sort();
}

export const mentionsIn = (text, people) =>
  people.filter((u) => new RegExp("(^|\\s)@" + u.replace(/[.]/g, "\\.") + "(?=$|[\\s,，。:：])").test(text));

export function fileSize(bytes) {
  if (bytes < 1024) return bytes + " B";
  if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KiB";
  return (bytes / 1024 / 1024).toFixed(1) + " MiB";
}

export async function rawCall(route, params, init) {
  const [method, template] = route.split(" ");
  const path = template.replace(/\{(\w+)\}/g, (_, name) => encodeURIComponent(params[name]));
  let response;
  try {
    response = await fetch(path, { method, cache: "no-store", credentials: "same-origin",
      ...init, headers: { ...authHeaders(), ...(init.headers || {}) } });
  } catch (exc) {
    throw new ApiError(0, "network_error", t("unreachable", { reason: exc.message }));
  }
  if (response.ok) return response;
  let error = null;
  try { error = (await response.json()).error; } catch { error = null; }
  if (response.status === 401) signOut(error ? error.message : null);
  throw error ? new ApiError(response.status, error.code, error.message, error.details)
    : new ApiError(response.status, "http_" + response.status, response.statusText);
}

export async function downloadFile(file, message) {
  try {
    const response = await rawCall(DISCUSS_API.download, { id: file.id }, {});
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", { href: url, download: file.name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (error) {
    if (error.status !== 401) fill(message, errorBox(error, t("discuss_download_failed")));
  }
}

export function filesOf(event) {
  const files = event.data && Array.isArray(event.data.attachments) ? event.data.attachments : [];
  return files.filter((f) => f && f.id && f.name);
}

export function discussionSection(view) {
  const message = el("div", { id: "discuss-list-message" });
  const shown = view.history.filter((e) => e.kind === "commented" || filesOf(e).length);
  const items = shown.map((e) => el("li", { "data-seq": e.seq },
    el("p", { class: "meta" }, t("event_by", { event: word("event", e.kind), who: e.actor, when: when(e.at) }),
      e.data && e.data.mentions && e.data.mentions.length
        ? [" · ", t("discuss_mentions", { users: joined(e.data.mentions) })] : null),
    e.kind === "commented" ? el("p", { class: "comment" }, e.comment || "") : null,
    filesOf(e).length ? el("ul", { class: "files" }, filesOf(e).map((f) => el("li", null,
      el("button", { type: "button", class: "link", "data-file": f.id,
        onclick: () => downloadFile(f, message) },
      t("discuss_download", { name: f.name, size: fileSize(f.size) }))))) : null));
  return el("section", { "aria-labelledby": "discuss-title", id: "discussion" },
    el("h3", { id: "discuss-title" }, t("discuss_files_title")),
    items.length ? el("ol", { class: "comments" }, items) : el("p", { class: "empty" }, t("discuss_none")),
    message,
    view.closed_at ? null : commentForm(view));
}

export function commentForm(view) {
  const people = peopleOnRequest(view);
  const message = el("div", { id: "discuss-message" });
  const box = el("textarea", { id: "discuss-body", rows: 3, maxlength: 4000 });
  const suggestions = el("div", { id: "discuss-suggestions", class: "actions", "aria-live": "polite" });
  const files = el("input", { id: "discuss-files", type: "file", multiple: true,
    accept: ".pdf,.png,.jpg,.jpeg,.gif,.webp,.xlsx,.docx,.txt,.csv" });
  const button = el("button", { type: "submit" }, t("discuss_submit"));
  // "@" and the start of an id at the caret: the people on the request it may name.
  const suggest = () => {
    const before = box.value.slice(0, box.selectionStart);
    const typed = /(^|\s)@([\w.@-]*)$/.exec(before);
    const matches = typed ? people.filter((u) => u.startsWith(typed[2])) : [];
    fill(suggestions, matches.length ? [el("span", { class: "meta" }, t("discuss_suggest")),
      matches.map((u) => el("button", { type: "button", "data-mention": u, onclick: () => {
        box.value = before.slice(0, before.length - typed[2].length) + u + " "
          + box.value.slice(box.selectionStart);
        fill(suggestions, []);
        box.focus();
      } }, "@" + u))] : [], false);
  };
  box.addEventListener("input", suggest);
  const form = el("form", { novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    const body = box.value.trim();
    if (!body) { missing(message, t("discuss_required"), box); return; }
    button.disabled = true;
    const ids = [];
    let current = "";
    try {
      for (const file of files.files) {
        current = file.name;
        message.replaceChildren(el("p", { class: "meta", role: "status" }, t("discuss_uploading", { name: file.name })));
        const data = new FormData();
        data.append("file", file, file.name);
        const response = await rawCall(DISCUSS_API.upload, {}, { body: data });
        ids.push((await response.json()).id);
      }
    } catch (error) {
      button.disabled = false;
      if (error.status !== 401) fill(message, errorBox(error, t("discuss_upload_failed", { name: current })));
      return;
    }
    const payload = { body, mentions: mentionsIn(body, people), attachments: ids };
    const last = state.pending;
    const text = JSON.stringify(payload);
    const key = last && last.id === view.id && last.action === "comment" && last.body === text
      ? last.key : randomKey();
    state.pending = { id: view.id, action: "comment", body: text, key };
    message.replaceChildren(el("p", { class: "meta", role: "status" }, t("sending")));
    try {
      await call(DISCUSS_API.comment, { params: { id: view.id }, body: payload, idempotencyKey: key });
    } catch (error) {
      if (error.status === 401) return;
      if (error.status !== 503 && error.status !== 0) state.pending = null;
      fill(message, errorBox(error, t("discuss_failed")));
      button.disabled = false;
      return;
    }
    state.pending = null;
    await openRequest(view.id, "done_discuss");
  } },
  el("fieldset", null,
    el("legend", null, t("discuss_title")),
    el("p", { class: "meta" }, t("discuss_hint")),
    el("label", { for: "discuss-body" }, t("discuss_label")), box, suggestions,
    el("label", { for: "discuss-files" }, t("discuss_files")), files,
    el("div", { class: "actions" }, button), message));
  return form;
}
