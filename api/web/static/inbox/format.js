// Formatting: money, local times, statuses and badges.
import { $, el } from "./dom.js";
import { locale, t, word } from "./i18n.js";
import { state } from "./state.js";

// ---- formatting (money stays a string; times are shown in local time) ---
export function human(code) { return String(code || "").replace(/_/g, " "); }
export function typeTitle(type) { return state.titles[type] || human(type); }
export const joined = (items) => items.join(t("list_sep"));

// An amount (a decimal string, as the API sends it) in yuan: "¥250,000.00", grouped as
// the reader's locale groups, with exactly the digits the API sent (never rounded).
export function money(amount) {
  if (amount === null || amount === undefined || amount === "") return "—";
  const text = String(amount);
  const match = /^-?\d+(?:\.(\d+))?$/.exec(text);
  if (!match) return t("money", { amount: text });
  const digits = Math.min((match[1] || "").length, 20);
  return new Intl.NumberFormat(locale(), {
    style: "currency", currency: "CNY", currencyDisplay: "narrowSymbol",
    minimumFractionDigits: digits, maximumFractionDigits: digits,
  }).format(text); // a string keeps every digit (Intl.NumberFormat v3)
}

export function localTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toLocaleString(locale(), { dateStyle: "medium", timeStyle: "short" });
}

export function relative(iso) {
  const ms = new Date(iso).getTime() - Date.now();
  if (Number.isNaN(ms)) return "";
  const minutes = Math.round(ms / 60000);
  const size = Math.abs(minutes);
  const [value, unit] = size < 60 ? [minutes, "minute"]
    : size < 48 * 60 ? [Math.round(minutes / 60), "hour"] : [Math.round(minutes / 1440), "day"];
  return new Intl.RelativeTimeFormat(locale(), { numeric: "always", style: "short" })
    .format(value, unit);
}

export function when(iso, withRelative) {
  if (!iso) return "—";
  const node = el("time", { datetime: iso, title: iso }, localTime(iso));
  return withRelative ? [node, t("in_brackets", { text: relative(iso) })] : node;
}

export const isPast = (iso) => Boolean(iso) && new Date(iso).getTime() < Date.now();

export const STAGE_TONES = { active: "info", approved: "ok", rejected: "bad", returned: "warn" };
export function stageBadge(status) {
  return el("span", { class: "badge " + (STAGE_TONES[status] || ""), title: status },
    word("stage_status", status));
}

// A request's status, or with group "milestone_status" a milestone's.
export function statusBadge(status, group) {
  const tone = /^(approved|completed|active|met)$/.test(status) ? "ok"
    : /^(rejected|lapsed|expired|terminated|revoked)$/.test(status) ? "bad"
      : /^(awaiting|returned|watching)/.test(status) ? "warn"
        : /^(in_review|submitted|open)$/.test(status) ? "info" : "";
  return el("span", { class: "badge " + tone, "data-status": status, title: status },
    word(group || "status", status));
}
export const overdueBadge = () => el("span", { class: "badge bad" }, t("overdue"));
// A working-time deadline counted without next year's official holidays (README, "Working time").
export const provisionalBadge = () => el("span", { class: "badge", title: t("provisional_hint") },
  t("provisional"));

export function person(user, onBehalfOf) {
  return onBehalfOf ? t("person_for", { user, principal: onBehalfOf }) : user;
}
