// Switching the page's language and drawing what is on screen again in it.
//
// The switch is the user's explicit choice of language: signed in, it is saved as their
// preference (API.changePreferences with only the locale: their other preferences stay
// as they are, their own or still following the org file and the defaults), because the
// API answers its texts (stage names, type titles, labels, working-time spans) and writes
// their notices in the saved language. Then what is on screen is fetched again. Signed
// out, and for ?lang= / #lang= in the address (a one-off view), it stays in the browser.
// At sign-in the page takes up the language saved for the user (followSavedLanguage).
import { call } from "./api.js";
import { bulk } from "./bulk.js";
import { renderDetail } from "./detail.js";
import { $, el, fill, rich } from "./dom.js";
import { provide } from "./hooks.js";
import { I18N, t } from "./i18n.js";
import { loadInbox, renderInbox } from "./inbox.js";
import { loadMine, mineItem } from "./mine.js";
import { loadNotices, noticeItem } from "./notices.js";
import { API } from "./routes.js";
import { loadTitles } from "./session.js";
import { inOrder } from "./saving.js";
import { state } from "./state.js";
import { hashFor } from "./token.js";

export function applyLanguage() {
  document.documentElement.lang = I18N.lang;
  document.title = t("app_title");
  for (const node of document.querySelectorAll("[data-i18n]")) fill(node, rich(t(node.dataset.i18n)));
  for (const node of document.querySelectorAll("[data-i18n-label]")) {
    node.setAttribute("aria-label", t(node.dataset.i18nLabel));
  }
  for (const node of document.querySelectorAll("[data-i18n-placeholder]")) {
    node.setAttribute("placeholder", t(node.dataset.i18nPlaceholder));
  }
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === I18N.lang));
  }
}


// The switch: at once in the page's words, remembered, and the address no longer names
// another language; signed in, saved and fetched again. Resolves when all is done.
export async function switchLanguage(lang) {
  if (!I18N.use(lang, true)) return;
  state.hashLang = null;
  const search = new URLSearchParams(location.search);
  search.delete("lang");
  const query = search.toString() ? "?" + search.toString() : "";
  history.replaceState(null, "", location.pathname + query + hashFor(state.selectedId));
  $("lang-status").replaceChildren();
  applyLanguage();
  redraw();
  if (!state.me) { switched(false); return; }
  const { latest, error } = await saveLanguageInOrder(lang);
  if (error) {
    if (latest && error.status !== 401) showNotSaved(error);
    if (latest) switched(false);
    return;
  }
  if (!latest || !state.me) return; // chosen again meanwhile: that one fetches
  try { await fetchAgain(); } catch { /* a 401: signed out already */ }
  switched(true);
}

// For the panels that ask the API themselves (newreq.js): the language is switched, and
// saved (the API answers in it) or not.
function switched(saved) {
  document.dispatchEvent(new CustomEvent("approvals:language", { detail: { lang: I18N.lang, saved } }));
}

// This locale saved as the user's own; the rest (channels, time zone) as they are.
async function saveLanguage(lang) {
  await call(API.changePreferences, { body: { locale: lang } });
  if (state.me) state.me.locale = lang;
}
const saveLanguageInOrder = inOrder(saveLanguage); // the last choice is the one kept

// Signed in (API.me): the page speaks the language saved for the user (their own choice,
// else the org file's), the one the API's texts are in, and this browser remembers it;
// unless the address names a language for this view (?lang=, #lang=). With none saved,
// the API follows the page's language (Accept-Language).
export function followSavedLanguage(me) {
  const saved = I18N.langOf(me && me.locale);
  if (!saved || saved === I18N.lang || I18N.fromQuery() || state.hashLang) return;
  I18N.use(saved, true);
  applyLanguage();
  redraw();
}

provide({ followSavedLanguage });

function showNotSaved(error) {
  fill($("lang-status"), el("div", { class: "error", role: "alert" },
    el("p", null, el("strong", null, t("lang_not_saved"))),
    el("p", null, error.message, " ",
      el("span", { class: "code" }, "(" + (error.status || t("no_status")) + " " + error.code + ")"))));
}

// What is on screen, asked of the API again (its texts now in the saved language).
async function fetchAgain() {
  await loadTitles();
  // Rows decided in bulk keep showing their outcome until the list is refreshed (bulk.js),
  // though the API lists them no more.
  const before = state.inbox;
  try { await loadInbox(); } catch { /* the inbox shows its own error */ }
  const listed = new Set(state.inbox.map((item) => item.request_id));
  const decided = before.filter((item) => !listed.has(item.request_id) && bulk.results.has(item.request_id));
  if (decided.length) { state.inbox = [...state.inbox, ...decided]; renderInbox(); }
  const id = state.selectedId;
  const seq = state.openSeq;
  const detail = async () => {
    if (!id || !state.view || state.view.id !== id) return;
    try {
      const view = await call(API.request, { params: { id } });
      if (seq === state.openSeq && state.selectedId === id) redrawDetail(view);
    } catch { /* the detail as it was; the next open shows what the API says */ }
  };
  await Promise.all([
    detail(),
    loadNotices(false),
    state.mineLoaded ? loadMine(false) : null,
  ]);
}

// The detail drawn again: what is being typed or chosen in its forms, and which forms
// are open, stay.
function redrawDetail(view) {
  const fields = [...$("detail").querySelectorAll("input[id], textarea[id], select[id]")]
    .map((node) => [node.id, node.value]);
  const opened = [...$("detail").querySelectorAll("details[open][id]")].map((node) => node.id);
  renderDetail(view, state.viewNotice);
  for (const [id, value] of fields) if ($(id)) $(id).value = value;
  for (const id of opened) if ($(id)) $(id).open = true;
}

// Everything on screen that came from the API, drawn again in the new language.
export function redraw() {
  if (state.me) renderInbox();
  if (state.mineLoaded) {
    $("mine-list").replaceChildren(...state.mineRows.map(mineItem));
    if (!state.mineRows.length) $("mine-list").append(el("li", { class: "empty" }, t("mine_empty")));
  }
  $("notices-list").replaceChildren(...state.notices.map(noticeItem));
  if (state.view && state.view.id === state.selectedId && $("detail-title")) redrawDetail(state.view);
}
