import { openRequest } from "./detail.js";
import { $, el } from "./dom.js";
import { I18N, t } from "./i18n.js";
import { loadInbox } from "./inbox.js";
import { applyLanguage, redraw, switchLanguage } from "./language.js";
import { setupDelegations } from "./delegations.js";
import { loadMine } from "./mine.js";
import { setupNewRequest } from "./newreq.js";
import { loadNotices, readAllNotices } from "./notices.js";
import { signOut, start } from "./session.js";
import { state } from "./state.js";
import { TABS, onTabKey, selectTab } from "./tabs.js";
import { hasSession, readFragment, setToken, token } from "./token.js";

// The inbox page's entry point (templates/inbox.html loads it): wires the static page
// to the modules, one per concern, then signs in with the tab's token if there is one.
setupDelegations();
setupNewRequest();

$("signin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = $("token").value.trim().replace(/^Bearer\s+/i, "");
  if (!value) {
    $("signin-error").replaceChildren(el("p", null, t("token_missing")));
    $("signin-error").hidden = false;
    $("token").focus();
    return;
  }
  setToken(value);
  $("token").value = "";
  $("signin-error").hidden = true;
  state.mineLoaded = false;
  selectTab("tab-inbox", false);
  start();
});
$("signout").addEventListener("click", (event) => {
  event.preventDefault();
  signOut(null);
});
$("inbox-refresh").addEventListener("click", () => { loadInbox().catch(() => {}); });
$("mine-refresh").addEventListener("click", () => loadMine(false));
$("notices-refresh").addEventListener("click", () => loadNotices(false));
$("notices-more").addEventListener("click", () => loadNotices(true));
$("notices-readall").addEventListener("click", () => { readAllNotices(); });
for (const button of document.querySelectorAll("[data-lang]")) {
  button.addEventListener("click", () => switchLanguage(button.dataset.lang));
}
applyLanguage();
$("mine-more").addEventListener("click", () => loadMine(true));
$("mine-form").addEventListener("submit", (event) => { event.preventDefault(); loadMine(false); });
for (const [id] of TABS) {
  $(id).addEventListener("click", () => selectTab(id, false));
  $(id).addEventListener("keydown", onTabKey);
}
window.addEventListener("hashchange", () => {
  const newLang = I18N.fromHash();
  if (newLang && newLang !== I18N.lang) {
    state.hashLang = newLang;
    I18N.use(newLang, false);
    applyLanguage();
    redraw();
  }
  const hadToken = /(^#|&)token=/.test(location.hash);
  const requestId = readFragment();
  if (hadToken) start(requestId);
  else if (requestId && (token() || hasSession()) && requestId !== state.selectedId) {
    openRequest(requestId);
  }
});

start(readFragment());
