// New request (发起申请): the request types, a form built from the chosen policy's
// fields, the route it would take (the preview) as one types, and the submission.
//
// Only the types the user may submit are offered (NEW_API.types with submittable=true, the
// rule the submission applies); the API's answer (422 naming fields) is shown where it belongs.
import { call, errorBox, randomKey } from "./api.js";
import { $, el, fill } from "./dom.js";
import { joined, typeTitle } from "./format.js";
import { openRequest } from "./hooks.js";
import { t } from "./i18n.js";
import {
  amountProblems, clearErrors as clearFormErrors, fieldBlocks, fieldProblems, fieldValues, localized,
  markErrors, routeList, setupAmount,
} from "./policyform.js";
import { state } from "./state.js";

export const NEW_API = {
  types: "GET /v1/policies",
  policy: "GET /v1/policies/{type}",
  preview: "POST /v1/policies/{type}/preview",
  submit: "POST /v1/requests",
};
export const PREVIEW_DELAY_MS = 400;

// What the tab holds: the types, the chosen policy, the preview's sequence, the key of
// the last submission that got no definite answer (a retry reuses it).
export const newreq = { types: null, policy: null, seq: 0, timer: null, pending: null };

export { localized }; // the policy's texts in the page's language (policyform.js)

const fieldId = (name) => "new-f-" + name;
// The id of the element an API field name ("amount", "fields.contract_no") is shown at.
function controlOf(field) {
  const name = String(field);
  if (name.startsWith("fields.")) return $(fieldId(name.slice(7)));
  return $("new-" + name);
}

// ---- the types ----------------------------------------------------------
export async function loadTypes() {
  const select = $("new-type");
  try {
    const data = await call(NEW_API.types, { query: { submittable: "true" } });
    newreq.types = data.items;
    state.titles = { ...state.titles, ...Object.fromEntries(data.items.map((p) => [p.type, p.title])) };
    const chosen = select.value;
    select.replaceChildren(el("option", { value: "" }, t("new_type_choose")),
      ...data.items.map((p) => el("option", { value: p.type }, p.title)));
    select.value = chosen;
    describeType();
  } catch (error) {
    if (error.status !== 401) $("new-status").replaceChildren(errorBox(error, t("new_types_failed")));
  }
}

function describeType() {
  const chosen = (newreq.types || []).find((p) => p.type === $("new-type").value);
  $("new-type-description").textContent = chosen ? chosen.description : "";
}

export async function chooseType() {
  const type = $("new-type").value;
  describeType();
  newreq.policy = null;
  newreq.pending = null;
  $("new-form").hidden = true;
  $("new-message").replaceChildren();
  if (!type) { $("new-status").replaceChildren(); return; }
  $("new-status").replaceChildren(el("p", { class: "meta" }, t("loading")));
  try {
    const policy = await call(NEW_API.policy, { params: { type } });
    if ($("new-type").value !== type) return;
    newreq.policy = policy;
    $("new-status").replaceChildren();
    renderForm(false);
    $("new-form").hidden = false;
    schedulePreview(0);
  } catch (error) {
    if (error.status !== 401) $("new-status").replaceChildren(errorBox(error, t("new_policy_failed")));
  }
}

// ---- the form (built by policyform.js) -----------------------------------
// keep: redrawn in another language, the values typed so far stay.
export function renderForm(keep) {
  const policy = newreq.policy;
  if (!policy) return;
  const values = keep ? Object.fromEntries([...$("new-fields").querySelectorAll("[data-name]")]
    .map((node) => [node.dataset.name, node.value])) : {};
  const amount = policy.amount || { required: false };
  $("new-amount-label").textContent = localized(amount.label) || t("new_amount");
  setupAmount(policy, $("new-amount"));
  $("new-amount-field").classList.toggle("optional", !amount.required);
  if (!keep) {
    for (const id of ["new-title", "new-customer", "new-amount", "new-comment"]) $(id).value = "";
  }
  fill($("new-fields"), fieldBlocks(policy, "new-f-"), false);
  for (const [name, value] of Object.entries(values)) if ($(fieldId(name))) $(fieldId(name)).value = value;
  clearErrors();
}

// The submission's body as the form holds it now.
export function body() {
  const policy = newreq.policy;
  const fields = fieldValues(policy, "new-f-");
  const data = { type: policy.type, title: $("new-title").value.trim(), fields };
  const customer = $("new-customer").value.trim();
  const amount = $("new-amount").value.trim();
  const comment = $("new-comment").value.trim();
  if (customer) data.customer = customer;
  if (amount) data.amount = amount;
  if (comment) data.comment = comment;
  return data;
}

// [field, message] for every value the API would refuse that the page can tell.
export function problems() {
  const found = [];
  if (!$("new-title").value.trim()) found.push(["title", t("new_err_required")]);
  found.push(...amountProblems($("new-amount")));
  found.push(...fieldProblems(newreq.policy, "new-f-"));
  return found;
}

export function clearErrors() {
  clearFormErrors($("new-form"));
}

// Each problem next to its field (the API's own words for its 422s); those the form has
// no place for are returned.
export function showErrors(found) {
  return markErrors($("new-form"), found, controlOf);
}

// ---- the preview, ~400 ms after the last keystroke -------------------------
export function schedulePreview(delay = PREVIEW_DELAY_MS) {
  clearTimeout(newreq.timer);
  newreq.timer = setTimeout(() => { preview(); }, delay);
}

function labelOf(field) {
  const node = controlOf(field);
  const label = node && document.querySelector(`label[for="${node.id}"]`);
  return label ? label.textContent : String(field);
}

export async function preview() {
  const box = $("new-preview");
  if (!newreq.policy) return;
  const seq = ++newreq.seq;
  // The route depends on the values: until the page's own checks pass, the API would
  // only refuse them (422), so it is not asked.
  const missing = problems().filter(([field]) => field !== "title");
  if (missing.length) {
    box.replaceChildren(el("p", { class: "meta" },
      t("new_preview_needs", { fields: joined(missing.map(([field]) => labelOf(field))) })));
    return;
  }
  box.setAttribute("aria-busy", "true");
  try {
    const data = await call(NEW_API.preview, { params: { type: newreq.policy.type }, body: previewBody() });
    if (seq !== newreq.seq) return;
    fill(box, routeList(data, "new-route"), false);
  } catch (error) {
    if (seq !== newreq.seq || error.status === 401) return;
    box.replaceChildren(errorBox(error, t("new_preview_failed")));
  } finally {
    if (seq === newreq.seq) box.removeAttribute("aria-busy");
  }
}

function previewBody() {
  const data = body();
  delete data.title; // checked only when submitted: the route does not depend on it
  return data;
}

// ---- submitting -------------------------------------------------------------
export async function submit(event) {
  event.preventDefault();
  const message = $("new-message");
  message.replaceChildren();
  const found = problems();
  if (found.length) {
    showErrors(found);
    controlOf(found[0][0]).focus();
    return;
  }
  clearErrors();
  const data = body();
  const text = JSON.stringify(data);
  // A retry of the same submission after a lost answer reuses its key: one request.
  const key = newreq.pending && newreq.pending.body === text ? newreq.pending.key : randomKey();
  newreq.pending = { body: text, key };
  const button = $("new-submit");
  button.disabled = true;
  message.replaceChildren(el("p", { class: "meta", role: "status" }, t("sending")));
  let view;
  try {
    view = await call(NEW_API.submit, { body: data, idempotencyKey: key });
  } catch (error) {
    button.disabled = false;
    if (error.status === 401) return;
    const definite = error.status !== 503 && error.status !== 0;
    if (definite) newreq.pending = null;
    const fields = (error.details && Array.isArray(error.details.fields)) ? error.details.fields : [];
    const elsewhere = showErrors(fields.map((f) => [f.field, f.message]));
    fill(message, [
      fields.length && !elsewhere.length
        ? el("div", { class: "error", role: "alert" }, el("p", null, el("strong", null, t("new_submit_failed")),
          " ", t("new_fix_fields")))
        : errorBox(error, t("new_submit_failed")),
      definite ? null : el("p", { class: "meta" }, t("new_retry_is_safe")),
    ], false);
    const first = fields.map((f) => controlOf(f.field)).find(Boolean);
    if (first) first.focus();
    return;
  }
  newreq.pending = null;
  button.disabled = false;
  message.replaceChildren();
  $("new-type").value = "";
  await chooseType();
  $("new-status").replaceChildren(el("p", { class: "notice", role: "status" },
    t("new_submitted", { title: view.title, type: typeTitle(view.type) })));
  await openRequest(view.id, "new_done");
  const title = $("detail-title");
  if (title) title.focus();
}

// ---- wiring -----------------------------------------------------------------
export function setupNewRequest() {
  $("new-type").addEventListener("change", () => { chooseType(); });
  $("new-type-form").addEventListener("submit", (event) => event.preventDefault());
  $("new-form").addEventListener("submit", submit);
  $("new-form").addEventListener("input", () => schedulePreview());
  $("new-form").addEventListener("change", () => schedulePreview());
  // After the page's switch has changed the language (and saved it, language.js): the
  // policy's texts again, the values typed staying, and the route in the new language.
  document.addEventListener("approvals:language", () => {
    if (!newreq.types) return;
    loadTypes();
    if (newreq.policy) { renderForm(true); schedulePreview(0); }
  });
}

// Signed out: another user may sign in next.
export function resetNewRequest() {
  clearTimeout(newreq.timer);
  Object.assign(newreq, { types: null, policy: null, pending: null });
  $("new-form").hidden = true;
  $("new-type").value = "";
  $("new-status").replaceChildren();
  $("new-type-description").textContent = "";
}

// The tab opened: the types, once.
export function openNewRequest() {
  if (!newreq.types) loadTypes();
}
