// The web inbox's language: zh-CN or en, and its words in it.
//
// The dictionary is api/web/inbox.i18n.json, served as the module text.js
// (api/web/router.py).
// The language is the first found of: ?lang= or #lang= in the address, the choice
// made with the page's switch (localStorage), the browser's first zh* or en*
// language (navigator.languages), English.
import INBOX_TEXT from "./text.js";

export const I18N = (() => {
  const STORE_KEY = "approvals.lang";
  const LANGS = ["zh-CN", "en"];

  // "zh", "zh-TW", "ZH-cn" -> "zh-CN"; "en-GB" -> "en"; anything else -> null.
  function langOf(value) {
    const code = String(value || "").toLowerCase();
    return code.startsWith("zh") ? "zh-CN" : code.startsWith("en") ? "en" : null;
  }

  const fromHash = () => langOf(new URLSearchParams(location.hash.slice(1)).get("lang"));
  const fromQuery = () => langOf(new URLSearchParams(location.search).get("lang"));

  function stored() {
    try { return langOf(localStorage.getItem(STORE_KEY)); } catch { return null; }
  }

  function fromBrowser() {
    const wanted = navigator.languages && navigator.languages.length
      ? navigator.languages : [navigator.language];
    for (const code of wanted) if (langOf(code)) return langOf(code);
    return null;
  }

  let lang = fromQuery() || fromHash() || stored() || fromBrowser() || "en";
  const words = () => INBOX_TEXT[lang] || INBOX_TEXT.en;
  const raw = (key) => String(words()[key] ?? INBOX_TEXT.en[key] ?? key);

  // A text with its {placeholders} filled in, as text.
  function t(key, vars) {
    return raw(key).replace(/\{(\w+)\}/g, (match, name) =>
      vars && name in vars ? String(vars[name]) : match);
  }

  // The same as a list of parts: a placeholder's value may be a DOM node (or a list).
  function tn(key, vars) {
    return raw(key).split(/\{(\w+)\}/).map((part, i) => (i % 2 ? (vars || {})[part] : part));
  }

  // The word for a value the API sends (a status, an event kind...): as sent if unknown.
  function word(group, code) {
    const known = (words()[group] || {})[code] ?? (INBOX_TEXT.en[group] || {})[code];
    if (known !== undefined) return known;
    const awaiting = group === "status" && /^awaiting_(.+)$/.exec(String(code));
    if (awaiting) return t("awaiting", { milestone: word("milestone", awaiting[1]) });
    return String(code ?? "");
  }

  // For dates and numbers: the browser's own variant of the language (en-GB stays
  // en-GB, zh-TW stays zh-TW), else the language itself.
  function locale() {
    const base = lang.split("-")[0];
    const own = (navigator.languages || []).find((code) => code.toLowerCase().split("-")[0] === base);
    return own || lang;
  }

  // Use a language; with remember, also from now on in this browser.
  function use(next, remember) {
    if (!LANGS.includes(next)) return false;
    lang = next;
    if (remember) {
      try { localStorage.setItem(STORE_KEY, next); } catch { /* private mode: this page only */ }
    }
    return true;
  }

  return { langOf, fromHash, fromQuery, t, tn, word, locale, use, get lang() { return lang; } };
})();

export const { t, tn, word, locale } = I18N;
