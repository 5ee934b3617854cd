// The bearer token (this tab's sessionStorage) and the address's fragment.
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
