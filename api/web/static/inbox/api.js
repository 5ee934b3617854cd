// Calling the v1 API, and its errors shown as the API said them.
import { el } from "./dom.js";
import { when } from "./format.js";
import { I18N, t } from "./i18n.js";
import { signOut } from "./hooks.js";
import { authHeaders } from "./token.js";

// ---- calling the API ---------------------------------------------------
export class ApiError extends Error {
  constructor(status, code, message, details, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
    this.retryAfter = retryAfter;
  }
}

export function randomKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function call(route, { params = {}, query = {}, body, idempotencyKey } = {}) {
  const [method, template] = route.split(" ");
  let path = template.replace(/\{(\w+)\}/g, (_, name) => encodeURIComponent(params[name]));
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== null && value !== undefined && value !== "") search.set(key, value);
  }
  if (search.toString()) path += "?" + search.toString();
  const headers = { Accept: "application/json", ...authHeaders() };
  headers["Accept-Language"] = I18N.lang; // the API's texts (labels, stages) as the page's
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
  let response;
  try {
    response = await fetch(path, {
      method, headers, cache: "no-store", credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (exc) {
    throw new ApiError(0, "network_error", t("unreachable", { reason: exc.message }));
  }
  let text = "";
  try { text = await response.text(); } catch { /* the body was cut off: no details */ }
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    const error = data && data.error;
    const failure = error
      ? new ApiError(response.status, error.code, error.message, error.details,
        response.headers.get("Retry-After"))
      : new ApiError(response.status, "http_" + response.status,
        text.slice(0, 300) || response.statusText || "HTTP " + response.status, null,
        response.headers.get("Retry-After"));
    if (response.status === 401) signOut(failure.message);
    throw failure;
  }
  if (data === null) throw new ApiError(0, "unreadable_answer", t("unreadable"));
  return data;
}

// The API's error, word for word, under a line (in the page's language) saying what
// it means for the user.
export function errorBox(error, failed) {
  const lines = [];
  if (error.status === 503) {
    const wait = error.retryAfter
      ? t("busy_retry_after", { seconds: error.retryAfter }) : t("busy");
    lines.push(el("p", null, el("strong", null, failed), " ", wait));
  } else if (error.status === 0) {
    lines.push(el("p", null, el("strong", null, t("no_answer")), " ", t("no_answer_hint")));
  } else {
    lines.push(el("p", null, el("strong", null, failed)));
  }
  lines.push(el("p", null, error.message, " ",
    el("span", { class: "code" }, "(" + (error.status || t("no_status")) + " " + error.code + ")")));
  if (error.status === 429 && error.details && error.details.next_allowed_at) {
    lines.push(el("p", { "data-next-allowed": error.details.next_allowed_at },
      t("urge_too_soon", { when: when(error.details.next_allowed_at) })));
  }
  const fields = (error.details && Array.isArray(error.details.fields)) ? error.details.fields : [];
  if (fields.length) {
    lines.push(el("ul", null, fields.map((f) => el("li", null, String(f.field) + ": " + String(f.message)))));
  }
  return el("div", { class: "error", role: "alert" }, lines);
}
