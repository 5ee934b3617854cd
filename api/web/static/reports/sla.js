// The SLA report page (templates/reports_sla.html): filters, the table by type and
// stage, the trend by ISO week (inline SVG bars), the slowest open requests, and their
// downloads: a CSV of each table and an Excel workbook with all three. Everything comes from GET /v1/reports/sla
// with the tab's token (or the company sign-in session), as the inbox calls the API.
import { $, el, fill, rich } from "../inbox/dom.js";
import { I18N, locale, t } from "../inbox/i18n.js";
import { inOrder } from "../inbox/saving.js";
import { authHeaders, loadSession, token } from "../inbox/token.js";

const REPORT = "/v1/reports/sla";
const FILTERS = ["from", "to", "department", "type"];
let access = null;
let report = null;

// ---- the API -----------------------------------------------------------
async function fetchApi(path, accept, body) {
  const headers = { Accept: accept || "application/json", "Accept-Language": I18N.lang, ...authHeaders() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    cache: "no-store", credentials: "same-origin", headers,
    ...(body === undefined ? {} : { method: "PATCH", body: JSON.stringify(body) }),
  });
  if (!response.ok) {
    let message = "HTTP " + response.status;
    try {
      const body = await response.json();
      if (body.error) message = body.error.message + " (" + response.status + " " + body.error.code + ")";
    } catch { /* not JSON: the status says it */ }
    throw new Error(message);
  }
  return response;
}
const getJson = async (path) => (await fetchApi(path)).json();

// ---- filters -------------------------------------------------------------
const isoDay = (date) => date.toISOString().slice(0, 10);

function filterValues() {
  const values = {};
  for (const name of FILTERS) {
    const value = $("sla-" + name).value.trim();
    if (value) values[name] = value;
  }
  return values;
}

function query(values) {
  const search = new URLSearchParams(values);
  return search.toString() ? "?" + search.toString() : "";
}

function initialFilters() {
  const asked = new URLSearchParams(location.search);
  const today = new Date();
  const start = new Date(today.getTime() - 27 * 86400000);
  $("sla-from").value = asked.get("from") || isoDay(start);
  $("sla-to").value = asked.get("to") || isoDay(today);
  $("sla-department").value = asked.get("department") || (access && access.department) || "";
  return asked.get("type") || "";
}

async function loadTypes(wanted) {
  const select = $("sla-type");
  const first = select.options[0];
  try {
    const data = await getJson("/v1/policies");
    select.replaceChildren(first, ...data.items.map((p) => el("option", { value: p.type }, p.title)));
  } catch { /* the type codes typed in the address still work */ }
  if (wanted && ![...select.options].some((o) => o.value === wanted)) {
    select.append(el("option", { value: wanted }, wanted));
  }
  select.value = wanted;
}

// ---- drawing -------------------------------------------------------------
const number = (value, digits) => (value === null || value === undefined ? "–"
  : new Intl.NumberFormat(locale(), { minimumFractionDigits: digits || 0,
    maximumFractionDigits: digits || 0 }).format(Number(value)));
const hours = (value) => number(value, 1);
const withRate = (count, rate) => (rate === null || rate === undefined ? number(count)
  : number(count) + " (" + number(rate, 1) + "%)");
const when = (value) => (value ? new Date(value).toLocaleString(locale(),
  { dateStyle: "short", timeStyle: "short" }) : "–");

function head(table, keys) {
  fill(table.tHead.rows[0], keys.map((key) => el("th", { scope: "col" }, t(key))));
}

function cells(values, numeric) {
  return values.map((value, i) => el("td", i >= numeric ? { class: "num" } : null, value));
}

function drawRows() {
  const table = $("sla-rows");
  head(table, ["sla_col_stage", "sla_col_steps", "sla_col_decided", "sla_col_median",
    "sla_col_p90", "sla_col_reply", "sla_col_escalations", "sla_col_submitted",
    "sla_col_resolved", "sla_col_resolve"]);
  const rows = report.rows.map((r) => el("tr", { class: r.stage_key ? null : "total",
    "data-type": r.request_type, "data-stage": r.stage_key || "" },
  el(r.stage_key ? "td" : "th", { scope: r.stage_key ? null : "row" },
    r.stage_key ? r.stage_name : r.type_title + " · " + r.stage_name),
  cells([number(r.steps), number(r.decided), hours(r.median_hours), hours(r.p90_hours),
    withRate(r.reply_breaches, r.reply_breach_rate), number(r.escalations),
    r.submitted === null ? "" : number(r.submitted), r.resolved === null ? "" : number(r.resolved),
    r.resolve_breaches === null ? "" : withRate(r.resolve_breaches, r.resolve_breach_rate)], 0)));
  fill(table.tBodies[0], rows.length ? rows
    : el("tr", null, el("td", { colspan: "10", class: "empty" }, t("sla_nothing"))));
}

const SVG = "http://www.w3.org/2000/svg";
function bars(week, most) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("width", "120");
  svg.setAttribute("height", "20");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", t("sla_bars_label", { decided: week.decided, breaches: week.reply_breaches }));
  const bar = (cls, y, value) => {
    const rect = document.createElementNS(SVG, "rect");
    rect.setAttribute("class", cls);
    rect.setAttribute("x", "0");
    rect.setAttribute("y", String(y));
    rect.setAttribute("height", "8");
    rect.setAttribute("width", String(most ? Math.round((120 * value) / most) : 0));
    svg.append(rect);
  };
  bar("decided", 1, week.decided);
  bar("breached", 11, week.reply_breaches);
  return svg;
}

function drawWeeks() {
  const table = $("sla-weeks");
  head(table, ["sla_col_week", "sla_col_steps", "sla_col_decided", "sla_col_median",
    "sla_col_reply_count", "sla_col_escalations", "sla_col_bars"]);
  const most = Math.max(0, ...report.weeks.map((w) => w.steps));
  const rows = report.weeks.map((w) => el("tr", { "data-week": w.week },
    el("th", { scope: "row" }, w.week),
    cells([number(w.steps), number(w.decided), hours(w.median_hours), number(w.reply_breaches),
      number(w.escalations)], 0),
    el("td", { class: "bars" }, bars(w, most))));
  fill(table.tBodies[0], rows.length ? rows
    : el("tr", null, el("td", { colspan: "7", class: "empty" }, t("sla_nothing"))));
}

function drawOpen() {
  const table = $("sla-open");
  head(table, ["sla_col_request", "sla_col_stage", "sla_col_waiting", "sla_col_open_hours",
    "sla_col_reply_due"]);
  const rows = report.slowest_open.map((o) => el("tr", { "data-id": o.id },
    el("td", null, el("a", { href: "/inbox#request=" + encodeURIComponent(o.id) }, o.title)),
    el("td", null, o.stage_name || o.stage_key || "–"),
    el("td", null, o.waiting_on.join(", ") || "–"),
    el("td", { class: "num" }, hours(o.open_hours)),
    el("td", null, when(o.reply_due))));
  fill(table.tBodies[0], rows.length ? rows
    : el("tr", null, el("td", { colspan: "5", class: "empty" }, t("sla_none_open"))));
}

function draw() {
  if (!report) return;
  $("sla-scope").textContent = t("sla_scope", {
    from: report.start, to: report.end,
    department: report.department || t("sla_everyone"),
    type: report.type || t("sla_all_types"),
  });
  drawRows();
  drawWeeks();
  drawOpen();
  $("sla-report").hidden = false;
}

// ---- loading -------------------------------------------------------------
async function load() {
  const values = filterValues();
  const search = query(values);
  history.replaceState(null, "", location.pathname + search + location.hash);
  $("sla-xlsx").href = REPORT + ".xlsx" + search;
  $("sla-csv").href = REPORT + ".csv" + search;
  $("sla-csv-weeks").href = REPORT + ".csv" + query({ ...values, table: "weeks" });
  $("sla-csv-open").href = REPORT + ".csv" + query({ ...values, table: "open" });
  $("sla-status").textContent = t("sla_loading");
  $("sla-show").disabled = true;
  try {
    report = await getJson(REPORT + search);
    $("sla-status").textContent = "";
    draw();
  } catch (error) {
    fill($("sla-status"), el("p", { class: "error" }, error.message));
  } finally {
    $("sla-show").disabled = false;
  }
}

// A bearer token cannot ride on a plain link: fetch the file and save it under the
// name the API gives. (A signed-in session's cookie goes with the link by itself.)
async function download(event) {
  if (!token()) return;
  event.preventDefault();
  const link = event.currentTarget;
  try {
    const response = await fetchApi(link.getAttribute("href"), "*/*");
    const named = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
    const url = URL.createObjectURL(await response.blob());
    const save = el("a", { href: url, download: named ? named[1] : "sla" });
    document.body.append(save);
    save.click();
    save.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (error) {
    fill($("sla-status"), el("p", { class: "error" }, error.message));
  }
}

// ---- language --------------------------------------------------------------
function applyLanguage() {
  document.documentElement.lang = I18N.lang;
  document.title = t("sla_title");
  for (const node of document.querySelectorAll("[data-i18n]")) fill(node, rich(t(node.dataset.i18n)));
  for (const node of document.querySelectorAll("[data-i18n-label]")) {
    node.setAttribute("aria-label", t(node.dataset.i18nLabel));
  }
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === I18N.lang));
  }
}

// The switch is the user's choice of language: signed in, it is saved as their preference
// (the API's texts and their notices follow it; their other preferences stay), as on the
// inbox (inbox/language.js); then the report is asked for again.
const PREFERENCES = "/v1/me/preferences";
// Only the locale becomes theirs; one save after the other, the last choice kept.
const saveLanguage = inOrder((lang) => fetchApi(PREFERENCES, null, { locale: lang }));

async function switchLanguage(lang) {
  if (!I18N.use(lang, true)) return;
  $("lang-status").replaceChildren();
  applyLanguage();
  if (!access) return; // not signed in: this browser only
  const { latest, error } = await saveLanguage(lang);
  if (!latest) return; // chosen again meanwhile: that one asks again
  if (error) {
    fill($("lang-status"), el("div", { class: "error", role: "alert" },
      el("p", null, el("strong", null, t("lang_not_saved"))), el("p", null, error.message)));
  }
  if (access.sla) {
    await loadTypes($("sla-type").value);
    await load();
  }
}

// Signed in, the page starts in the user's saved language (as the inbox does), unless the
// address names one for this view.
async function followSavedLanguage() {
  let me;
  try { me = await getJson("/v1/me"); } catch { return; } // the browser's language stays
  const saved = I18N.langOf(me && me.locale);
  if (!saved || saved === I18N.lang || I18N.fromQuery() || I18N.fromHash()) return;
  I18N.use(saved, true);
  applyLanguage();
}

async function start() {
  applyLanguage();
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.addEventListener("click", () => switchLanguage(button.dataset.lang));
  }
  if (!token() && !(await loadSession())) { $("sla-signin").hidden = false; return; }
  try {
    access = await getJson("/v1/reports");
  } catch (error) {
    fill($("sla-status"), el("p", { class: "error" }, error.message));
    return;
  }
  await followSavedLanguage();
  if (!access.sla) { fill($("sla-status"), el("p", { class: "error" }, t("sla_forbidden"))); return; }
  const wantedType = initialFilters();
  await loadTypes(wantedType);
  $("sla-filters").hidden = false;
  $("sla-filters").addEventListener("submit", (event) => { event.preventDefault(); load(); });
  $("sla-type").addEventListener("change", load);
  for (const link of document.querySelectorAll("#sla-downloads a")) link.addEventListener("click", download);
  await load();
}

start();
