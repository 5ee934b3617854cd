// The bearer token (this tab's sessionStorage), the company sign-in session, and the
// address's fragment.
import { state } from "./state.js";

export const TOKEN_KEY = "approvals.token";

// ---- the token ---------------------------------------------------------
export function getToken() {
  try { return sessionStorage.getItem(TOKEN_KEY); } catch { return null; }
}
export function setToken(token) {
  try { sessionStorage.setItem(TOKEN_KEY, token); } catch { /* private mode: memory only */ }
  memoryToken = token;
}
export function clearToken() {
  try { sessionStorage.removeItem(TOKEN_KEY); } catch { /* nothing stored */ }
  memoryToken = null;
}
export let memoryToken = null;
export const token = () => getToken() || memoryToken;

// ---- or a session: signed in through the company identity provider -------
// The session's cookie is HttpOnly; what the page holds is the CSRF token that every
// call must send beside it (GET /auth/session), and whether company sign-in exists.
let csrf = null;
let companySignIn = false;
export const hasSession = () => Boolean(csrf);
export const companySignInOffered = () => companySignIn;

// What signs a call in: the tab's token if there is one, else the session's CSRF token
// (its cookie goes along by itself: credentials "same-origin").
export function authHeaders() {
  if (token()) return { Authorization: "Bearer " + token() };
  return csrf ? { "X-CSRF-Token": csrf } : {};
}

// Whether the browser has a session; also learns whether company sign-in exists.
export async function loadSession() {
  csrf = null;
  try {
    const response = await fetch("/auth/session", { cache: "no-store",
      credentials: "same-origin", headers: { Accept: "application/json" } });
    const data = await response.json();
    companySignIn = Boolean(data.sign_in_url);
    if (data.signed_in) { csrf = data.csrf_token; return true; }
  } catch { /* no answer: the token form still works */ }
  return false;
}

export function endSession() {
  if (!csrf) return;
  const sent = csrf;
  csrf = null;
  fetch("/auth/logout", { method: "POST", credentials: "same-origin",
    headers: { "X-CSRF-Token": sent } }).catch(() => {});
}

// The fragment may carry "token=..." (the dev stack's links: kept for this tab and
// dropped from the URL at once) and "request=<id>" (a link to one request).
export function readFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const given = params.get("token");
  if (given) {
    setToken(given.trim());
    params.delete("token");
  }
  linkFragment(params.get("request"));
  return params.get("request");
}

export function hashFor(requestId) {
  const params = new URLSearchParams();
  if (requestId) params.set("request", requestId);
  if (state.hashLang) params.set("lang", state.hashLang);
  return params.toString() ? "#" + params.toString() : "";
}

export function linkFragment(requestId) {
  history.replaceState(null, "", location.pathname + location.search + hashFor(requestId));
}
