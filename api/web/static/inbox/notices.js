// Notifications: the third tab and its unread count.
import { call, errorBox } from "./api.js";
import { $, el } from "./dom.js";
import { when } from "./format.js";
import { openRequest } from "./hooks.js";
import { t, word } from "./i18n.js";
import { API } from "./routes.js";
import { state } from "./state.js";

// ---- notifications ------------------------------------------------------
export const noticeKind = (kind) => word("notice", kind);

export function showUnread(count) {
  $("notices-count").textContent = count ? String(count) : "";
  $("notices-count").hidden = !count;
}

export async function loadNotices(more) {
  const list = $("notices-list");
  const status = $("notices-status");
  if (!more) { state.noticesCursor = null; state.notices = []; list.replaceChildren(); }
  list.setAttribute("aria-busy", "true");
  status.replaceChildren(el("p", { class: "meta" }, t("loading")));
  $("notices-more").hidden = true;
  try {
    const data = await call(API.notices, { query: { cursor: state.noticesCursor, limit: 50 } });
    status.replaceChildren();
    showUnread(data.unread);
    state.noticesCursor = data.next_cursor;
    $("notices-more").hidden = !data.next_cursor;
    state.notices.push(...data.items);
    list.append(...data.items.map(noticeItem));
    if (!list.children.length) list.append(el("li", { class: "empty" }, t("notices_none")));
  } catch (error) {
    if (error.status !== 401) status.replaceChildren(errorBox(error, t("notices_failed")));
  } finally {
    list.removeAttribute("aria-busy");
  }
}

export function noticeItem(notice) {
  const readButton = notice.read ? null : el("button", {
    type: "button",
    onclick: async (event) => {
      const button = event.currentTarget;
      button.disabled = true;
      try {
        await call(API.noticeRead, { params: { id: notice.id } });
        await loadNotices(false);
      } catch (error) {
        button.disabled = false;
        if (error.status !== 401) $("notices-status").replaceChildren(errorBox(error, t("notices_mark_failed")));
      }
    },
  }, t("notices_read"));
  return el("li", { class: "card item" + (notice.read ? "" : " unread") },
    el("span", { class: "row" },
      el("span", { class: "item-title" }, noticeKind(notice.kind)),
      notice.read ? null : el("span", { class: "badge info" }, t("notices_unread"))),
    notice.title ? el("span", null, notice.title) : null,
    el("span", { class: "meta" }, when(notice.created_at, true)),
    el("span", { class: "row" },
      notice.request_id ? el("button", {
        type: "button", onclick: () => openRequest(notice.request_id),
      }, t("notices_open")) : null,
      readButton));
}

export async function readAllNotices() {
  const button = $("notices-readall");
  button.disabled = true;
  try {
    await call(API.noticesReadAll);
    await loadNotices(false);
  } catch (error) {
    if (error.status !== 401) $("notices-status").replaceChildren(errorBox(error, t("notices_mark_failed")));
  } finally {
    button.disabled = false;
  }
}
