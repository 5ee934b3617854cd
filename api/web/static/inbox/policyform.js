// A policy's form, built from its field definitions: one control per field (labels and
// help in the page's language), the values as the API takes them, the checks the API
// makes that the page can tell, errors beside their fields, and the route a preview
// returns. The new-request form (newreq.js) and the resubmission (requester.js) both
// build theirs here; prefix names each form's control ids (prefix + field name).
import { $, el } from "./dom.js";
import { human, joined } from "./format.js";
import { I18N, t, word } from "./i18n.js";

const NUMBER = /^-?\d+(\.\d+)?$/;
const INTEGER = /^-?\d+$/;

// A policy's text: a plain string, or {en, zh-CN} (the page's language, else English).
export function localized(text) {
  if (text === null || text === undefined) return "";
  if (typeof text === "string") return text;
  return text[I18N.lang] || text.en || Object.values(text)[0] || "";
}

export function errorLine(id) {
  return el("p", { class: "field-error", id: id + "-error", hidden: true });
}

function control(spec, id) {
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

// One block (label, control, help, error line) per field of the policy.
export function fieldBlocks(policy, prefix) {
  return (policy.fields || []).map((spec) => {
    const id = prefix + spec.name;
    const label = localized(spec.label) || human(spec.name);
    const help = localized(spec.help);
    return el("div", { class: "field", "data-field": "fields." + spec.name },
      el("label", { for: id }, spec.required ? label : t("new_optional", { label })),
      // The unit (%, 天, 元) beside the input, as the label no longer carries it.
      spec.unit ? el("div", { class: "with-unit" }, control(spec, id),
        el("span", { class: "unit", id: id + "-unit" }, localized(spec.unit))) : control(spec, id),
      help || limits(spec)
        ? el("p", { class: "meta", id: id + "-help" }, [help, limits(spec)].filter(Boolean).join(" "))
        : null,
      errorLine(id));
  });
}

// The request's stored value as its control holds it ("true"/"false" for yes/no).
export function setFieldValues(policy, prefix, values) {
  for (const spec of policy.fields || []) {
    const node = $(prefix + spec.name);
    const value = (values || {})[spec.name];
    if (node && value !== undefined && value !== null) node.value = String(value);
  }
}

function fieldValue(spec, prefix) {
  const raw = $(prefix + spec.name).value;
  const value = spec.type === "text" ? raw : raw.trim();
  if (value === "") return undefined;
  if (spec.type === "boolean") return value === "true";
  return value;
}

// The fields as the form holds them now (those left empty are left out).
export function fieldValues(policy, prefix) {
  const fields = {};
  for (const spec of policy.fields || []) {
    const value = fieldValue(spec, prefix);
    if (value !== undefined) fields[spec.name] = value;
  }
  return fields;
}

// ---- checks as the API makes them: required, numbers, min and max ---------
export function numberProblem(value, integer, min, max, positive) {
  if (!(integer ? INTEGER : NUMBER).test(value)) return t(integer ? "new_err_integer" : "new_err_number");
  const number = Number(value);
  if (positive && !(number > 0)) return t("new_err_positive");
  if (min !== "" && min !== null && min !== undefined && number < Number(min)) return t("new_err_min", { min });
  if (max !== "" && max !== null && max !== undefined && number > Number(max)) return t("new_err_max", { max });
  return null;
}

// The amount's control, set up as the policy asks (required, positive, at most).
export function setupAmount(policy, input) {
  const amount = policy.amount || { required: false };
  input.required = Boolean(amount.required);
  input.dataset.positive = amount.positive ? "true" : "";
  input.dataset.max = amount.max ?? "";
}

// ["amount", message] if the amount's control holds what the API would refuse.
export function amountProblems(input) {
  const value = input.value.trim();
  if (!value) return input.required ? [["amount", t("new_err_required")]] : [];
  const problem = numberProblem(value, false, null, input.dataset.max, input.dataset.positive === "true");
  return problem ? [["amount", problem]] : [];
}

// ["fields.<name>", message] for every field the API would refuse that the page can tell.
export function fieldProblems(policy, prefix) {
  const found = [];
  for (const spec of policy.fields || []) {
    const value = fieldValue(spec, prefix);
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

export function clearErrors(form) {
  for (const node of form.querySelectorAll(".field-error")) {
    node.hidden = true;
    node.textContent = "";
  }
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
}

// Each problem next to its field (controlOf: an API field name -> its control); those
// the form has no place for are returned.
export function markErrors(form, found, controlOf) {
  clearErrors(form);
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

// The route a preview returned: each stage, who would decide it and why.
export function routeList(data, id) {
  if (!data.stages.length) return el("p", { class: "meta" }, t("new_preview_none"));
  return el("ol", { class: "stages", id }, data.stages.map((stage) =>
    el("li", { class: "stage", "data-stage": stage.key },
      el("strong", null, stage.name),
      el("span", { class: "meta" }, " · ", word("mode", stage.mode)),
      el("p", { class: "meta" }, t("new_stage_who", {
        people: stage.people.length ? joined(stage.people) : t("new_stage_nobody"),
      })),
      stage.reason ? el("p", { class: "meta reason" }, t("new_stage_why", { reason: stage.reason })) : null)));
}
