// New request (发起申请): the request types, a form built from the chosen policy's
// fields, the route it would take (the preview) as one types, and the submission.
//
// Only the types the user may submit are offered (NEW_API.types with submittable=true, the
// rule the submission applies); the API's answer (422 naming fields) is shown where it belongs.
import { call, errorBox, randomKey } from "./api.js";
import { openRequest } from "./detail.js";
import { $, el, fill } from "./dom.js";
import { human, joined, typeTitle } from "./format.js";
import { I18N, t, word } from "./i18n.js";
import { state } from "./state.js";

export const NEW_API = {
  types: "GET /v1/policies",
  policy: "GET /v1/policies/{type}",
  preview: "POST /v1/policies/{type}/preview",
  submit: "POST /v1/requests",
};
export const PREVIEW_DELAY_MS = 400;
const NUMBER = /^-?\d+(\.\d+)?$/;
const INTEGER = /^-?\d+$/;

// What the tab holds: the types, the chosen policy, the preview's sequence, the key of
// the last submission that got no definite answer (a retry reuses it).
export const newreq = { types: null, policy: null, seq: 0, timer: null, pending: null };

// A policy's text: a plain string, or {en, zh-CN} (the page's language, else English).
export function localized(text) {
  if (text === null || text === undefined) return "";
  if (typeof text === "string") return text;
  return text[I18N.lang] || text.en || Object.values(text)[0] || "";
}

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

// ---- the form -------------------------------------------------------------
function errorLine(id) {
  return el("p", { class: "field-error", id: id + "-error", hidden: true });
}

function control(spec) {
  const id = fieldId(spec.name);
  const common = { id, "data-name": spec.name, "aria-describedby": [spec.unit ? id + "-unit" : null,
    localized(spec.help) || limits(spec) ? id + "-help" : null, id + "-error"].filter(Boolean).join(" ") };
  if (spec.required) common.required = true;
  switch (spec.type) {
    case "text":
      return el("textarea", { ...common, rows: 3, maxlength: spec.max_length });
    case "choice":
      return el("select", common, el("option", { value: "" }, t("new_choose")),
        spec.choices.map((c) => el("option", { value: c },
          localized((spec.choice_labels || {})[c]) || c)));
    case "boolean":
      return el("select", common, el("option", { value: "" }, t("new_choose")),
        el("option", { value: "true" }, t("new_yes")), el("option", { value: "false" }, t("new_no")));
    case "date":
      return el("input", { ...common, type: "date" });
    case "decimal":
    case "integer":
      return el("input", { ...common, inputmode: spec.type === "integer" ? "numeric" : "decimal",
        autocomplete: "off" });
    default:
      return el("input", { ...common, maxlength: Math.min(spec.max_length || 500, 500) });
  }
}

function limits(spec) {
  const has = (v) => v !== null && v !== undefined;
  if (has(spec.min) && has(spec.max)) return t("new_between", { min: spec.min, max: spec.max });
  if (has(spec.min)) return t("new_at_least", { min: spec.min });
  if (has(spec.max)) return t("new_at_most", { max: spec.max });
  return null;
}

// keep: redrawn in another language, the values typed so far stay.
export function renderForm(keep) {
  const policy = newreq.policy;
  if (!policy) return;
  const values = keep ? Object.fromEntries([...$("new-fields").querySelectorAll("[data-name]")]
    .map((node) => [node.dataset.name, node.value])) : {};
  const amount = policy.amount || { required: false };
  $("new-amount-label").textContent = localized(amount.label) || t("new_amount");
  $("new-amount").required = Boolean(amount.required);
  $("new-amount").dataset.positive = amount.positive ? "true" : "";
  $("new-amount").dataset.max = amount.max ?? "";
  $("new-amount-field").classList.toggle("optional", !amount.required);
  if (!keep) {
    for (const id of ["new-title", "new-customer", "new-amount", "new-comment"]) $(id).value = "";
  }
  fill($("new-fields"), (policy.fields || []).map((spec) => {
    const id = fieldId(spec.name);
    const label = localized(spec.label) || human(spec.name);
    const help = localized(spec.help);
    return el("div", { class: "field", "data-field": "fields." + spec.name },
      el("label", { for: id }, spec.required ? label : t("new_optional", { label })),
      // The unit (%, 天, 元) beside the input, as the label no longer carries it.
      spec.unit ? el("div", { class: "with-unit" }, control(spec),
        el("span", { class: "unit", id: id + "-unit" }, localized(spec.unit))) : control(spec),
      help || limits(spec)
        ? el("p", { class: "meta", id: id + "-help" }, [help, limits(spec)].filter(Boolean).join(" "))
        : null,
      errorLine(id));
  }), false);
  for (const [name, value] of Object.entries(values)) if ($(fieldId(name))) $(fieldId(name)).value = value;
  clearErrors();
}

function fieldValue(spec) {
  const raw = $(fieldId(spec.name)).value;
  const value = spec.type === "text" ? raw : raw.trim();
  if (value === "") return undefined;
  if (spec.type === "boolean") return value === "true";
  return value;
}

// The submission's body as the form holds it now.
export function body() {
  const policy = newreq.policy;
  const fields = {};
  for (const spec of policy.fields || []) {
    const value = fieldValue(spec);
    if (value !== undefined) fields[spec.name] = value;
  }
  const data = { type: policy.type, title: $("new-title").value.trim(), fields };
  const customer = $("new-customer").value.trim();
  const amount = $("new-amount").value.trim();
  const comment = $("new-comment").value.trim();
  if (customer) data.customer = customer;
  if (amount) data.amount = amount;
  if (comment) data.comment = comment;
  return data;
}

// ---- checks as the API makes them: required, numbers, min and max ---------
function numberProblem(value, integer, min, max, positive) {
  if (!(integer ? INTEGER : NUMBER).test(value)) return t(integer ? "new_err_integer" : "new_err_number");
  const number = Number(value);
  if (positive && !(number > 0)) return t("new_err_positive");
  if (min !== "" && min !== null && min !== undefined && number < Number(min)) return t("new_err_min", { min });
  if (max !== "" && max !== null && max !== undefined && number > Number(max)) return t("new_err_max", { max });
  return null;
}

// [field, message] for every value the API would refuse that the page can tell.
export function problems() {
  const found = [];
  if (!$("new-title").value.trim()) found.push(["title", t("new_err_required")]);
  const amount = $("new-amount");
  if (amount.value.trim()) {
    const problem = numberProblem(amount.value.trim(), false, null, amount.dataset.max,
      amount.dataset.positive === "true");
    if (problem) found.push(["amount", problem]);
  } else if (amount.required) {
    found.push(["amount", t("new_err_required")]);
  }
  for (const spec of newreq.policy.fields || []) {
    const value = fieldValue(spec);
    const name = "fields." + spec.name;
    if (value === undefined) {
      if (spec.required) found.push([name, t("new_err_required")]);
    } else if (spec.type === "decimal" || spec.type === "integer") {
      const problem = numberProblem(value, spec.type === "integer", spec.min, spec.max, false);
      if (problem) found.push([name, problem]);
    }
  }
  return found;
}

export function clearErrors() {
  for (const node of $("new-form").querySelectorAll(".field-error")) {
    node.hidden = true;
    node.textContent = "";
  }
  for (const node of $("new-form").querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
}

// Each problem next to its field (the API's own words for its 422s); those the form has
// no place for are returned.
export function showErrors(found) {
  clearErrors();
  const elsewhere = [];
  for (const [field, message] of found) {
    const node = controlOf(field);
    const line = node && $(node.id + "-error");
    if (!line) { elsewhere.push([field, message]); continue; }
    node.setAttribute("aria-invalid", "true");
    line.textContent = line.hidden ? message : line.textContent + " " + message;
    line.hidden = false;
  }
  return elsewhere;
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
    fill(box, routeList(data), false);
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

function routeList(data) {
  if (!data.stages.length) return el("p", { class: "meta" }, t("new_preview_none"));
  return el("ol", { class: "stages", id: "new-route" }, data.stages.map((stage) =>
    el("li", { class: "stage", "data-stage": stage.key },
      el("strong", null, stage.name),
      el("span", { class: "meta" }, " · ", word("mode", stage.mode)),
      el("p", { class: "meta" }, t("new_stage_who", {
        people: stage.people.length ? joined(stage.people) : t("new_stage_nobody"),
      })),
      stage.reason ? el("p", { class: "meta reason" }, t("new_stage_why", { reason: stage.reason })) : null)));
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
  for (const button of document.querySelectorAll("[data-lang]")) {
    // After the page's own switch has changed the language: the policy's texts again,
    // the values typed staying, and the route in the new language.
    button.addEventListener("click", () => setTimeout(() => {
      if (!newreq.types) return;
      loadTypes();
      if (newreq.policy) { renderForm(true); schedulePreview(0); }
    }));
  }
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
