// Sign in and out; loading who the caller is.
import { call } from "./api.js";
import { openRequest } from "./detail.js";
import { $, el } from "./dom.js";
import { followSavedLanguage, provide } from "./hooks.js";
import { t } from "./i18n.js";
import { loadInbox } from "./inbox.js";
import { resetNewRequest } from "./newreq.js";
import { loadNotices, showUnread } from "./notices.js";
import { showReportLinks } from "./reports.js";
import { API } from "./routes.js";
import { state } from "./state.js";
import {
  clearToken, companySignInOffered, endSession, linkFragment, loadSession, token,
} from "./token.js";

// ---- sign in / out -----------------------------------------------------
export function signOut(message) {
  clearToken();
  endSession();
  state.me = null; // the language switch saves no one's preference now (language.js)
  linkFragment(null);
  state.inbox = [];
  state.selectedId = null;
  state.pending = null;
  $("app").hidden = true;
  $("session").hidden = true;
  $("inbox-list").replaceChildren();
  $("mine-list").replaceChildren();
  $("notices-list").replaceChildren();
  showUnread(0);
  resetNewRequest();
  state.view = null;
  state.mineRows = [];
  state.notices = [];
  $("detail").replaceChildren(el("p", { class: "placeholder", "data-i18n": "detail_placeholder" },
    t("detail_placeholder")));
  const box = $("signin-error");
  box.replaceChildren();
  if (message) box.append(el("p", null, el("strong", null, t("sign_in_again")), " ", message));
  box.hidden = !message;
  $("signin").hidden = false;
  $("signin-company").hidden = !companySignInOffered();
  $("token").value = "";
  $("token").focus();
}

export async function start(requestId) {
  if (!token() && !(await loadSession())) { signOut(null); return; }
  $("signin").hidden = true;
  $("who").textContent = t("checking_token");
  $("session").hidden = false;
  try {
    // The API says whether the token is good (401 if not); it is never decoded here.
    await loadMe();
    showReportLinks(); // its own errors only leave the link hidden
    await loadTitles();
    await loadInbox();
    $("app").hidden = false;
    loadNotices(false); // the unread count on its tab; its own errors show in its panel
  } catch (error) {
    if (error.status === 401) return; // signOut has asked for a token again
    $("app").hidden = false;
    $("who").textContent = t("signed_in_partly");
  }
  if (requestId) openRequest(requestId);
}

// Who the token speaks for (a 401 here asks for the token again), and the language saved
// for them, which the page then speaks (language.js).
export async function loadMe() {
  state.me = await call(API.me);
  followSavedLanguage(state.me);
}

// The request types' names; without them the page shows the type codes.
export async function loadTitles() {
  try {
    const data = await call(API.policies);
    state.titles = Object.fromEntries(data.items.map((p) => [p.type, p.title]));
  } catch (error) {
    if (error.status === 401) throw error;
  }
}

provide({ signOut });
