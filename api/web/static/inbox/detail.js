// One request: the detail pane and the decision form.
import { moreActions, reloadAll, revocable } from "./actions.js";
import { call, errorBox, randomKey } from "./api.js";
import { discussionSection } from "./discussion.js";
import { $, el, fill } from "./dom.js";
import { joined, money, overdueBadge, statusBadge, typeTitle, when } from "./format.js";
import { provide } from "./hooks.js";
import { t, tn } from "./i18n.js";
import { loadInbox, renderInbox } from "./inbox.js";
import { API } from "./routes.js";
import { fieldsSection, historySection, milestonesSection, stagesSection } from "./sections.js";
import { state } from "./state.js";
import { deadlinesSection, requesterActions } from "./requester.js";
import { linkFragment } from "./token.js";

// Keys of the dictionary's words for each decision.
export const ACTIONS = {
  approve: { label: "action_approve", done: "done_approve" },
  return: { label: "action_return", done: "done_return" },
  reject: { label: "action_reject", done: "done_reject" },
};


// ---- one request -------------------------------------------------------
export async function openRequest(id, notice) {
  state.selectedId = id;
  linkFragment(id);
  const seq = ++state.openSeq;
  for (const button of document.querySelectorAll(".item")) button.removeAttribute("aria-current");
  renderInbox();
  for (const button of $("mine-list").querySelectorAll(".item")) {
    if (button.dataset.id === id) button.setAttribute("aria-current", "true");
  }
  const detail = $("detail");
  detail.setAttribute("aria-busy", "true");
  if (!notice) detail.replaceChildren(el("p", { class: "meta", role: "status" }, t("detail_loading")));
  try {
    const view = await call(API.request, { params: { id } });
    if (seq !== state.openSeq) return; // another request was opened meanwhile
    renderDetail(view, notice);
  } catch (error) {
    if (seq !== state.openSeq || error.status === 401) return;
    detail.replaceChildren(errorBox(error, t("detail_failed")));
  } finally {
    if (seq === state.openSeq) detail.removeAttribute("aria-busy");
  }
  if (!notice) {
    const heading = $("detail-title");
    if (heading) heading.focus();
  }
}

// notice: the key of a line to show above it ("done_approve"), or null.
export function renderDetail(view, notice) {
  state.view = view;
  state.viewNotice = notice || null;
  const mySteps = state.inbox.filter((item) => item.request_id === view.id);
  const facts = [
    ["f_status", [statusBadge(view.status), view.overdue ? [" ", overdueBadge()] : null]],
    ["f_type", t("type_version", { type: typeTitle(view.type), version: view.policy_version })],
    ["f_requester", view.requester],
    ["f_customer", view.customer || "—"],
    ["f_amount", money(view.amount)],
    ["f_submitted", when(view.submitted_at)],
    ["f_resolve_by", view.resolve_due ? when(view.resolve_due, true) : "—"],
  ];
  if (view.resubmit_due) facts.push(["f_resubmit_by", when(view.resubmit_due, true)]);
  if (view.closed_at) facts.push(["f_closed", when(view.closed_at)]);
  if (view.current_approvers.length) facts.push(["f_waiting_for", joined(view.current_approvers)]);
  if (view.cc && view.cc.length) facts.push(["f_cc", joined(view.cc)]);
  if (revocable(view)) facts.push(["f_revocable_until", when(view.revocable_until, true)]);
  if (view.urges && view.last_urge) {
    facts.push(["f_urged", tn("urged_times", { count: view.urges, when: when(view.last_urge.at) })]);
  }
  if (view.comment) facts.push(["f_comment", view.comment]);

  fill($("detail"), [
    el("h2", { id: "detail-title", tabindex: "-1" }, view.title),
    el("p", { class: "meta" }, tn("request_id", { id: el("code", null, view.id) })),
    notice ? el("p", { class: "notice", role: "status" }, t(notice)) : null,
    el("dl", { class: "facts" }, facts.map(([k, v]) => [el("dt", null, t(k)), el("dd", null, v)])),
    deadlinesSection(view),
    mySteps.length ? decisionForm(view, mySteps) : null,
    requesterActions(view),
    moreActions(view, mySteps),
    fieldsSection(view.fields, view.field_labels, view.field_units),
    stagesSection(view),
    view.milestones.length ? milestonesSection(view.milestones, (view.working_time || {}).milestone) : null,
    view.to_reverse && view.to_reverse.length
      ? el("p", { class: "meta", "data-to-reverse": view.to_reverse.length },
        t("to_reverse", { count: view.to_reverse.length }))
      : null,
    discussionSection(view),
    historySection(view.history),
  ]);
}

export function decisionForm(view, steps) {
  const stageNames = joined([...new Set(steps.map((s) => s.stage_name))]);
  const behalf = steps.filter((s) => s.on_behalf_of).map((s) => s.on_behalf_of);
  const message = el("div", { id: "decision-message" });
  const comment = el("textarea", { id: "decision-comment", rows: 3, maxlength: 4000 });
  const buttons = Object.entries(ACTIONS).map(([action, spec]) => el("button", {
    type: "button", class: action, "data-action": action,
    onclick: () => decide(view.id, action, comment, buttons, message),
  }, t(spec.label)));
  return el("form", { class: "decide", onsubmit: (event) => event.preventDefault() },
    el("fieldset", null,
      el("legend", null, t("your_decision", { stages: stageNames })),
      behalf.length ? el("p", { class: "meta" }, t("act_on_behalf", { users: joined(behalf) })) : null,
      el("label", { for: "decision-comment" }, t("comment_optional")),
      comment,
      el("div", { class: "actions" }, buttons),
      message));
}

export async function decide(id, action, commentBox, buttons, message) {
  const comment = commentBox.value.trim();
  // A retry of the same decision after a 503 or a lost answer reuses its key,
  // so the server applies it at most once.
  const last = state.pending;
  const key = last && last.id === id && last.action === action && last.comment === comment
    ? last.key : randomKey();
  state.pending = { id, action, comment, key };
  for (const button of buttons) button.disabled = true;
  message.replaceChildren(el("p", { class: "meta", role: "status" }, t("sending")));
  const body = comment ? { action, comment } : { action };
  try {
    await call(API.decide, { params: { id }, body, idempotencyKey: key });
  } catch (error) {
    if (error.status === 401) return;
    const definite = error.status !== 503 && error.status !== 0;
    if (definite) state.pending = null;
    fill(message, [
      errorBox(error, t("decision_failed", { action: t(ACTIONS[action].label).toLowerCase() })),
      definite ? null : el("p", { class: "meta" }, t("retry_is_safe")),
      el("p", null, el("button", { type: "button", onclick: () => reloadAll(id) }, t("reload_both"))),
    ]);
    for (const button of buttons) button.disabled = false;
    return;
  }
  state.pending = null;
  // Show what the server now says, not what we expect it to say.
  try { await loadInbox(); } catch { /* the inbox shows its own error */ }
  await openRequest(id, ACTIONS[action].done);
  const title = $("detail-title");
  if (title) title.focus();
}

provide({ openRequest });
