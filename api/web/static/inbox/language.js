// Switching the page's language and drawing what is on screen again in it.
import { renderDetail } from "./detail.js";
import { $, el, fill, rich } from "./dom.js";
import { I18N, t } from "./i18n.js";
import { renderInbox } from "./inbox.js";
import { mineItem } from "./mine.js";
import { noticeItem } from "./notices.js";
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

// The switch: at once, remembered, and the address no longer names another language.
export function switchLanguage(lang) {
  if (!I18N.use(lang, true)) return;
  state.hashLang = null;
  const search = new URLSearchParams(location.search);
  search.delete("lang");
  const query = search.toString() ? "?" + search.toString() : "";
  history.replaceState(null, "", location.pathname + query + hashFor(state.selectedId));
  applyLanguage();
  redraw();
}

// Everything on screen that came from the API, drawn again in the new language.
export function redraw() {
  if (state.me) renderInbox();
  if (state.mineLoaded) {
    $("mine-list").replaceChildren(...state.mineRows.map(mineItem));
    if (!state.mineRows.length) $("mine-list").append(el("li", { class: "empty" }, t("mine_empty")));
  }
  $("notices-list").replaceChildren(...state.notices.map(noticeItem));
  if (state.view && state.view.id === state.selectedId && $("detail-title")) {
    // What is being typed or chosen in the detail's forms, and which forms are open, stay.
    const fields = [...$("detail").querySelectorAll("input[id], textarea[id], select[id]")]
      .map((node) => [node.id, node.value]);
    const opened = [...$("detail").querySelectorAll("details[open][id]")].map((node) => node.id);
    renderDetail(state.view, state.viewNotice);
    for (const [id, value] of fields) if ($(id)) $(id).value = value;
    for (const id of opened) if ($(id)) $(id).open = true;
  }
}
