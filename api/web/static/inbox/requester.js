// The request page's requester side: the deadlines counting down (countdown.js does the
// math), and the requester's own actions, offered when they apply (the API still
// decides, and its refusal is shown in place): resubmit with changes after a return
// (the policy's form, built by policyform.js as for a new request), withdraw (with a
// confirm step), and record a payment on an open milestone.
import { act, actionForm, missing, reasonBox } from "./actions.js";
import { minus } from "./amounts.js";
import { call, errorBox } from "./api.js";
import { countdown, span, TICK_MS } from "./countdown.js";
import { $, el, fill, present } from "./dom.js";
import { money, provisionalBadge, when } from "./format.js";
import { t } from "./i18n.js";
import {
  amountProblems, fieldBlocks, fieldProblems, fieldValues, localized, markErrors, routeList,
  setFieldValues, setupAmount,
} from "./policyform.js";
import { state } from "./state.js";

export const REQUESTER_API = {
  policy: "GET /v1/policies/{type}",
  preview: "POST /v1/policies/{type}/preview",
};
const PREVIEW_DELAY_MS = 400;
const WITHDRAWABLE = /^(in_review|returned|active|watching)$/;
const RECORDS_PAYMENTS = ["finance_staff", "order_desk"];

// What is typed into the resubmit form, kept while the page draws the request again (in
// another language, say): {id, version, fields, amount, comment}.
let draft = null;

// ---- deadlines, counting down ------------------------------------------------
// "2 d 3 h left" / "overdue by 20 min", at the clock's time now.
export function countdownText(due, now) {
  const left = countdown(due, now);
  if (!left) return "";
  const units = { d: (n) => t("dur_d", { n }), h: (n) => t("dur_h", { n }), min: (n) => t("dur_min", { n }) };
  const text = [span(left, (n, unit) => units[unit](n))].flat().join(t("dur_sep"));
  return t(left.overdue ? "cd_overdue" : "cd_left", { time: text });
}

function countdownNode(due) {
  const left = countdown(due, Date.now());
  return el("span", { class: "countdown badge " + (left && left.overdue ? "bad" : "info"),
    "data-due": due, role: "timer", "aria-live": "off" }, countdownText(due, Date.now()));
}

// Every countdown on the page again (the clock moved; nothing is fetched).
export function tickCountdowns() {
  const now = Date.now();
  for (const node of document.querySelectorAll(".countdown[data-due]")) {
    const left = countdown(node.dataset.due, now);
    node.textContent = countdownText(node.dataset.due, now);
    node.classList.toggle("bad", Boolean(left && left.overdue));
    node.classList.toggle("info", !(left && left.overdue));
  }
}

let ticker = null;
export function startTicking() {
  if (ticker === null) ticker = setInterval(tickCountdowns, TICK_MS);
}

// A working-time note's span comes in the page's language from the API (Accept-Language),
// as the inbox and the preview show it: "4 working hours", "4个工作小时".
function deadline(kind, label, due, note) {
  return el("li", { class: "deadline", "data-kind": kind },
    el("span", { class: "deadline-what" }, label),
    el("span", { class: "row" }, when(due), countdownNode(due)),
    note ? el("span", { class: "meta working", "data-working": note.span },
      t("dl_working", { span: note.span }),
      note.provisional ? [" ", provisionalBadge()] : null) : null);
}

export function deadlinesSection(view) {
  if (view.closed_at) return null;
  const notes = view.working_time || {};
  const active = view.stages.find((s) => s.status === "active" && s.index === view.stage_index);
  const open = view.milestones.find((m) => m.status === "open");
  const items = [
    active && active.reply_due
      ? deadline("reply", t("dl_reply", { stage: active.name }), active.reply_due, notes.reply) : null,
    view.resolve_due && /^(submitted|in_review|returned)$/.test(view.status)
      ? deadline("resolve", t("dl_resolve"), view.resolve_due, notes.resolve) : null,
    view.resubmit_due && view.status === "returned"
      ? deadline("resubmit", t("dl_resubmit"), view.resubmit_due, notes.resubmit) : null,
    open && open.due
      ? deadline("milestone", t("dl_milestone", { milestone: open.title || open.name }), open.due,
        notes.milestone)
      : null,
  ].filter(present);
  if (!items.length) return null;
  startTicking();
  return el("section", { "aria-labelledby": "deadlines-title" },
    el("h3", { id: "deadlines-title" }, t("deadlines")),
    el("p", { class: "meta" }, t("deadlines_hint")),
    el("ul", { class: "deadlines" }, items));
}

// ---- the requester's actions ---------------------------------------------------
export function requesterActions(view) {
  const me = state.me ? state.me.id : null;
  const requester = me !== null && me === view.requester;
  const pays = requester || Boolean(state.me && (state.me.is_admin
    || (state.me.roles || []).some((r) => RECORDS_PAYMENTS.includes(r))));
  const open = view.milestones.filter((m) => m.status === "open");
  const forms = [
    requester && view.status === "returned" ? resubmitForm(view) : null,
    pays ? open.map((m) => paymentForm(view, m)) : null,
    requester && !view.closed_at && WITHDRAWABLE.test(view.status) ? withdrawForm(view) : null,
  ].flat().filter(present);
  if (!forms.length) return null;
  return el("section", { class: "own", "aria-labelledby": "mine-actions-title" },
    el("h3", { id: "mine-actions-title" }, t("requester_actions")), forms);
}

function field(id, label, control, hint) {
  return el("div", { class: "field" }, el("label", { for: id }, label), control,
    hint ? el("p", { class: "meta", id: id + "-help" }, hint) : null,
    el("p", { class: "field-error", id: id + "-error", hidden: true }));
}

// Resubmit with changes (重新提交): the policy's form, holding the request's values now;
// the route it would take now shown as one types.
export function resubmitForm(view) {
  const PREFIX = "rs-f-";
  const holder = { policy: null, timer: null, seq: 0 };
  const fields = el("div", { id: "rs-fields" });
  const amount = el("input", { id: "rs-amount", inputmode: "decimal", autocomplete: "off",
    "aria-describedby": "rs-amount-error" });
  amount.value = view.amount === null || view.amount === undefined ? "" : String(view.amount);
  const comment = el("textarea", { id: "rs-comment", rows: 2, maxlength: 4000 });
  const route = el("div", { id: "rs-preview", "aria-live": "polite" });
  const amountLabel = el("span", null, view.amount_label || t("new_amount"));
  const controls = [
    el("p", { class: "meta" }, t("resubmit_hint")),
    el("div", { class: "field", "data-field": "amount" },
      el("label", { for: "rs-amount" }, amountLabel), amount,
      el("p", { class: "field-error", id: "rs-amount-error", hidden: true })),
    fields,
    el("label", { for: "rs-comment" }, t("resubmit_comment")), comment,
    el("section", { class: "preview", "aria-labelledby": "rs-preview-title" },
      el("h4", { id: "rs-preview-title" }, t("resubmit_route")), route),
  ];
  const controlOf = (name) => (String(name).startsWith("fields.")
    ? $(PREFIX + String(name).slice(7)) : $("rs-" + name));
  const problems = () => (holder.policy
    ? [...amountProblems(amount), ...fieldProblems(holder.policy, PREFIX)] : []);
  const body = () => {
    const data = { fields: fieldValues(holder.policy, PREFIX) };
    if (amount.value.trim()) data.amount = amount.value.trim();
    if (comment.value.trim()) data.comment = comment.value.trim();
    return data;
  };

  async function preview() {
    if (!details.isConnected) return;
    const seq = ++holder.seq;
    const found = problems();
    if (found.length) {
      markErrors(details, found, controlOf);
      route.replaceChildren(el("p", { class: "meta" }, t("resubmit_preview_needs")));
      return;
    }
    markErrors(details, [], controlOf);
    const data = body();
    delete data.comment;
    if (view.customer) data.customer = view.customer;
    route.setAttribute("aria-busy", "true");
    try {
      const answer = await call(REQUESTER_API.preview, { params: { type: view.type }, body: data });
      if (seq === holder.seq) fill(route, routeList(answer, "rs-route"), false);
    } catch (error) {
      if (seq === holder.seq && error.status !== 401) {
        route.replaceChildren(errorBox(error, t("new_preview_failed")));
      }
    } finally {
      if (seq === holder.seq) route.removeAttribute("aria-busy");
    }
  }
  const schedule = (delay) => {
    clearTimeout(holder.timer);
    // Not once the page has drawn the request again (sent, or another one opened).
    holder.timer = setTimeout(() => { if (holder.policy && details.isConnected) preview(); }, delay);
  };

  async function load() {
    fields.replaceChildren(el("p", { class: "meta", role: "status" }, t("loading")));
    try {
      holder.policy = await call(REQUESTER_API.policy, { params: { type: view.type } });
    } catch (error) {
      if (error.status !== 401) fields.replaceChildren(errorBox(error, t("new_policy_failed")));
      return;
    }
    amountLabel.textContent = localized((holder.policy.amount || {}).label) || amountLabel.textContent;
    setupAmount(holder.policy, amount);
    fill(fields, fieldBlocks(holder.policy, PREFIX), false);
    const kept = draft && draft.id === view.id && draft.version === view.version ? draft : null;
    setFieldValues(holder.policy, PREFIX, kept ? kept.fields : view.fields);
    if (kept) { amount.value = kept.amount; comment.value = kept.comment; }
    schedule(0);
  }

  const details = actionForm(view, "resubmit", "resubmit", t("resubmit_title"), t("resubmit_submit"),
    controls, (message) => {
      if (!holder.policy) return missing(message, t("loading"), amount);
      clearTimeout(holder.timer);
      const found = problems();
      if (found.length) {
        markErrors(details, found, controlOf);
        message.replaceChildren();
        controlOf(found[0][0]).focus();
        return null;
      }
      return body();
    }, "approve");
  details.addEventListener("toggle", () => { if (details.open && !holder.policy) load(); });
  const keep = () => {
    if (!holder.policy) return;
    const typed = Object.fromEntries((holder.policy.fields || []).map((spec) =>
      [spec.name, $(PREFIX + spec.name) ? $(PREFIX + spec.name).value : ""]));
    draft = { id: view.id, version: view.version, fields: typed, amount: amount.value,
      comment: comment.value };
  };
  details.addEventListener("input", () => { keep(); schedule(PREVIEW_DELAY_MS); });
  details.addEventListener("change", () => { keep(); schedule(PREVIEW_DELAY_MS); });
  return details;
}

// Withdraw (撤回): a reason, then a confirm step before anything is sent.
export function withdrawForm(view) {
  const [reasonLabel, reason] = reasonBox("withdraw-comment");
  reason.removeAttribute("required");
  reason.removeAttribute("aria-required");
  reasonLabel.textContent = t("withdraw_reason");
  return actionForm(view, "withdraw", "withdraw", t("withdraw_title"), t("withdraw_submit"), [
    el("p", { class: "meta" }, t("withdraw_hint")),
    reasonLabel, reason,
  ], (message) => {
    const comment = reason.value.trim();
    const body = comment ? { comment } : {};
    const yes = el("button", { type: "button", class: "reject", id: "withdraw-confirm",
      onclick: () => act(view.id, "withdraw", body, yes, message) }, t("withdraw_confirm"));
    const no = el("button", { type: "button", id: "withdraw-cancel",
      onclick: () => { message.replaceChildren(); reason.focus(); } }, t("cancel"));
    fill(message, el("div", { class: "confirm", role: "alertdialog",
      "aria-labelledby": "withdraw-confirm-text" },
    el("p", { id: "withdraw-confirm-text" }, el("strong", null, t("withdraw_sure"))),
    el("div", { class: "actions" }, yes, no)), false);
    yes.focus();
    return null;
  }, "reject");
}

// Record a payment (登记收款) on an open milestone: the amount (the remaining one
// proposed) and the bank reference.
export function paymentForm(view, milestone) {
  const id = "pay-" + milestone.name;
  const left = milestone.required === null || milestone.required === undefined
    ? null : minus(milestone.required, milestone.paid);
  const amount = el("input", { id: id + "-amount", inputmode: "decimal", autocomplete: "off",
    required: true, "aria-required": "true", "aria-describedby": left !== null ? id + "-amount-help" : null });
  if (left !== null && !left.startsWith("-") && !/^0+(\.0+)?$/.test(left)) amount.value = left;
  const reference = el("input", { id: id + "-reference", autocomplete: "off", maxlength: 200 });
  return actionForm(view, "milestone", id, t("pay_title", { milestone: milestone.title || milestone.name }),
    t("pay_submit"), [
      field(id + "-amount", t("pay_amount"), amount,
        left !== null ? t("pay_left", { amount: money(left) }) : null),
      field(id + "-reference", t("pay_reference"), reference),
    ], (message) => {
      const value = amount.value.trim();
      if (!/^\d+(\.\d+)?$/.test(value) || !(Number(value) > 0)) {
        return missing(message, t("pay_amount_required"), amount);
      }
      const body = { amount: value };
      if (reference.value.trim()) body.reference = reference.value.trim();
      return body;
    }, "approve", { name: milestone.name });
}

