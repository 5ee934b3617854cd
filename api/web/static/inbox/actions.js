// The route's other actions: send back, add approvers, copy in, revoke, urge, reassign.
import { call, errorBox, randomKey } from "./api.js";
import { $, el, fill, present } from "./dom.js";
import { loadInbox, openRequest } from "./hooks.js";
import { isPast, joined, person, when } from "./format.js";
import { t, tn, word } from "./i18n.js";
import { API } from "./routes.js";
import { state } from "./state.js";

// The route's other actions (issue 16): each one's call and its words.
export const ROUTE_ACTIONS = {
  send_back: { route: API.sendBack, done: "done_send_back", failed: "send_back_failed" },
  add_approvers: { route: API.addApprovers, done: "done_add", failed: "add_failed" },
  cc: { route: API.addCc, done: "done_cc", failed: "cc_failed" },
  revoke: { route: API.revoke, done: "done_revoke", failed: "revoke_failed" },
  urge: { route: API.urge, done: "done_urge", failed: "urge_failed" },
  reassign: { route: API.reassign, done: "done_reassign", failed: "reassign_failed" },
  // The requester's (requester.js).
  resubmit: { route: API.resubmit, done: "done_resubmit", failed: "resubmit_failed" },
  withdraw: { route: API.withdraw, done: "done_withdraw", failed: "withdraw_failed" },
  milestone: { route: API.milestone, done: "done_pay", failed: "pay_failed" },
};

// ---- the route's other actions: send back, add approvers, copy in, revoke ----
// Offered as the API allows them (docs/api.md): what it refuses anyway is shown in place.
export function moreActions(view, steps) {
  const me = state.me ? state.me.id : null;
  const approver = steps.length > 0 && view.status === "in_review";
  const requester = me !== null && me === view.requester;
  const admin = Boolean(state.me && state.me.is_admin);
  const forms = [
    approver ? sendBackForm(view) : null,
    approver ? addApproversForm(view) : null,
    (approver || requester) && !view.closed_at ? ccForm(view) : null,
    (requester || admin) && revocable(view) ? revokeForm(view) : null,
    requester && view.status === "in_review" && view.current_approvers.length ? urgeForm(view) : null,
    admin && view.status === "in_review" && view.current_approvers.length ? reassignForm(view) : null,
  ].filter(present);
  if (!forms.length) return null;
  return el("section", { class: "more", "aria-labelledby": "more-title" },
    el("h3", { id: "more-title" }, t("more_actions")), forms);
}

// An approval the policy lets its requester (or an admin) take back, still in its window.
export function revocable(view) {
  return Boolean(view.revocable_until) && !view.closed_at && !isPast(view.revocable_until)
    && /^(approved|awaiting_.+|active)$/.test(view.status);
}

// One action: a closed <details> whose form sends it. fields(): the body, or null when
// something is missing (the form then says what, beside the field). params: the route's
// other parameters ({name} of a milestone).
export function actionForm(view, action, id, title, submitLabel, controls, fields, buttonClass, params) {
  const message = el("div", { id: id + "-message" });
  const button = el("button", { type: "submit", class: buttonClass || null }, submitLabel);
  const form = el("form", {
    novalidate: true,
    onsubmit: (event) => {
      event.preventDefault();
      const body = fields(message);
      if (body) act(view.id, action, body, button, message, params);
    },
  }, controls, button, message);
  return el("details", { id: "act-" + id, "data-action": action }, el("summary", null, title), form);
}

export function missing(message, text, field) {
  message.replaceChildren(el("div", { class: "error", role: "alert" }, el("p", null, text)));
  field.focus();
  return null;
}

// "sh_zhou, fin_he" or "sh_zhou fin_he" (also with Chinese commas) -> ["sh_zhou", "fin_he"].
export const peopleOf = (text) => text.split(/[\s,，、;；]+/).filter(Boolean);

export function reasonBox(id) {
  return [el("label", { for: id }, t("reason_label")),
    el("textarea", { id, rows: 2, maxlength: 4000, required: true, "aria-required": "true" })];
}

export function peopleBox(id) {
  return [el("label", { for: id }, t("people_label")),
    el("input", { id, autocomplete: "off", spellcheck: "false", required: true,
      "aria-required": "true" })];
}

export function sendBackForm(view) {
  const passed = view.stages.filter((stage) => view.stage_index !== null
    && stage.index < view.stage_index && stage.status === "approved");
  const target = el("select", { id: "sendback-to" },
    passed.map((stage) => el("option", { value: stage.key }, (stage.index + 1) + ". " + stage.name)),
    el("option", { value: "requester" }, t("send_back_requester", { user: view.requester })));
  const [reasonLabel, reason] = reasonBox("sendback-comment");
  return actionForm(view, "send_back", "sendback", t("send_back_title"), t("send_back_submit"), [
    el("p", { class: "meta" }, t("send_back_hint")),
    el("label", { for: "sendback-to" }, t("send_back_to")), target,
    reasonLabel, reason,
  ], (message) => {
    const comment = reason.value.trim();
    if (!comment) return missing(message, t("reason_required"), reason);
    return { to_stage: target.value, comment };
  });
}

export function addApproversForm(view) {
  const [peopleLabel, people] = peopleBox("addsign-people");
  const position = el("select", { id: "addsign-position" },
    ["before", "after", "alongside"].map((p) => el("option", { value: p }, word("add_position", p))));
  const mode = el("select", { id: "addsign-mode" },
    ["all", "any", "in_turn"].map((m) => el("option", { value: m }, word("add_mode", m))));
  const [reasonLabel, reason] = reasonBox("addsign-comment");
  return actionForm(view, "add_approvers", "addsign", t("add_title"), t("add_submit"), [
    peopleLabel, people,
    el("label", { for: "addsign-position" }, t("add_position_label")), position,
    el("label", { for: "addsign-mode" }, t("add_mode_label")), mode,
    reasonLabel, reason,
  ], (message) => {
    const who = peopleOf(people.value);
    if (!who.length) return missing(message, t("people_required"), people);
    const comment = reason.value.trim();
    if (!comment) return missing(message, t("reason_required"), reason);
    return { people: who, position: position.value, mode: mode.value, comment };
  });
}

export function ccForm(view) {
  const [peopleLabel, people] = peopleBox("cc-people");
  const note = el("textarea", { id: "cc-comment", rows: 2, maxlength: 4000 });
  return actionForm(view, "cc", "cc", t("cc_title"), t("cc_submit"), [
    el("p", { class: "meta" }, t("cc_hint")),
    peopleLabel, people,
    el("label", { for: "cc-comment" }, t("cc_comment")), note,
  ], (message) => {
    const who = peopleOf(people.value);
    if (!who.length) return missing(message, t("people_required"), people);
    const comment = note.value.trim();
    return comment ? { people: who, comment } : { people: who };
  });
}

export function revokeForm(view) {
  const [reasonLabel, reason] = reasonBox("revoke-comment");
  return actionForm(view, "revoke", "revoke", t("revoke_title"), t("revoke_submit"), [
    el("p", { class: "meta" }, tn("revoke_hint", { when: when(view.revocable_until) })),
    reasonLabel, reason,
  ], (message) => {
    const comment = reason.value.trim();
    if (!comment) return missing(message, t("reason_required"), reason);
    return { comment };
  }, "revoke");
}

// ---- urge (催办) and an administrator's reassignment (issue 17) ----
export function urgeForm(view) {
  const note = el("textarea", { id: "urge-comment", rows: 2, maxlength: 4000 });
  return actionForm(view, "urge", "urge", t("urge_title"), t("urge_submit"), [
    el("p", { class: "meta" }, t("urge_hint", { people: joined(view.current_approvers) })),
    el("label", { for: "urge-comment" }, t("urge_comment")), note,
  ], () => {
    const comment = note.value.trim();
    return comment ? { comment } : {};
  });
}

export function reassignForm(view) {
  const from = el("select", { id: "reassign-from" },
    view.current_approvers.map((user) => el("option", { value: user }, person(user))));
  const to = el("input", { id: "reassign-to", autocomplete: "off", spellcheck: "false",
    required: true, "aria-required": "true" });
  const [reasonLabel, reason] = reasonBox("reassign-comment");
  return actionForm(view, "reassign", "reassign", t("reassign_title"), t("reassign_submit"), [
    el("p", { class: "meta" }, t("reassign_hint")),
    el("label", { for: "reassign-from" }, t("reassign_from")), from,
    el("label", { for: "reassign-to" }, t("reassign_to")), to,
    reasonLabel, reason,
  ], (message) => {
    const toUser = to.value.trim();
    if (!toUser) return missing(message, t("reassign_to_required"), to);
    const comment = reason.value.trim();
    if (!comment) return missing(message, t("reason_required"), reason);
    return { from_user: from.value, to_user: toUser, comment };
  });
}

export async function act(id, action, body, button, message, params) {
  const spec = ROUTE_ACTIONS[action];
  const text = JSON.stringify([params || {}, body]);
  // As for decisions: a retry of the same action after a 503 or a lost answer reuses its key.
  const last = state.pending;
  const key = last && last.id === id && last.action === action && last.body === text
    ? last.key : randomKey();
  state.pending = { id, action, body: text, key };
  button.disabled = true;
  message.replaceChildren(el("p", { class: "meta", role: "status" }, t("sending")));
  try {
    await call(spec.route, { params: { ...params, id }, body, idempotencyKey: key });
  } catch (error) {
    if (error.status === 401) return;
    const definite = error.status !== 503 && error.status !== 0;
    if (definite) state.pending = null;
    fill(message, [
      errorBox(error, t(spec.failed)),
      definite ? null : el("p", { class: "meta" }, t("retry_is_safe")),
    ]);
    button.disabled = false;
    return;
  }
  state.pending = null;
  try { await loadInbox(); } catch { /* the inbox shows its own error */ }
  await openRequest(id, spec.done);
  const title = $("detail-title");
  if (title) title.focus();
}

export async function reloadAll(id) {
  try { await loadInbox(); } catch { /* the inbox shows its own error */ }
  await openRequest(id);
}
