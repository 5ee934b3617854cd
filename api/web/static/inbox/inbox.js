// The pending steps (待办): the list on the first tab.
import { call, errorBox } from "./api.js";
import { bulkBox, bulkResult, bulkSync } from "./bulk.js";
import { $, el, fill } from "./dom.js";
import { money, overdueBadge, provisionalBadge, typeTitle, when } from "./format.js";
import { openRequest, provide } from "./hooks.js";
import { t, tn } from "./i18n.js";
import { API } from "./routes.js";
import { state } from "./state.js";

// ---- the inbox ---------------------------------------------------------
// Every pending step is listed, most urgent first, up to this many (then a note says how
// many more there are): pages of the API's largest size, followed to the end.
const PAGE = 200;
const AT_MOST = 1000;

async function pendingSteps() {
  let data = await call(API.inbox, { query: { limit: PAGE } });
  const items = [...data.items];
  while (data.next_cursor && items.length < AT_MOST) {
    data = await call(API.inbox, { query: { limit: PAGE, cursor: data.next_cursor } });
    items.push(...data.items);
  }
  return { items, total: data.total };
}

export async function loadInbox() {
  const list = $("inbox-list");
  const status = $("inbox-status");
  list.setAttribute("aria-busy", "true");
  status.replaceChildren(el("p", { class: "meta" }, t("loading")));
  try {
    const data = await pendingSteps();
    state.inbox = data.items; // the API orders them: most urgent first
    state.inboxTotal = data.total; // every page; beyond AT_MOST, only the most urgent
    status.replaceChildren();
    renderInbox();
  } catch (error) {
    if (error.status !== 401) status.replaceChildren(errorBox(error, t("inbox_failed")));
    throw error;
  } finally {
    list.removeAttribute("aria-busy");
  }
}

export function renderInbox() {
  const items = state.inbox;
  const total = typeof state.inboxTotal === "number" ? state.inboxTotal : items.length;
  $("inbox-count").textContent = String(total);
  const who = state.me ? t("who", { name: state.me.name, id: state.me.id }) : t("signed_in");
  $("who").textContent = t(total ? (total === 1 ? "waiting_one" : "waiting_many") : "waiting_none",
    { who, count: total });
  fill($("inbox-list"), items.map((item) => el("li", { class: "bulk-row" }, bulkBox(item),
    el("button", {
      type: "button", class: "item",
      "aria-current": item.request_id === state.selectedId ? "true" : null,
      onclick: () => openRequest(item.request_id),
    },
    el("span", { class: "item-title" }, item.title),
    el("span", { class: "meta" }, typeTitle(item.type), " · ", money(item.amount)),
    el("span", { class: "meta" }, t("item_stage", { stage: item.stage_name }), " · ",
      t("item_from", { requester: item.requester }), item.customer ? " · " + item.customer : null),
    item.on_behalf_of ? el("span", { class: "meta" }, t("on_behalf", { user: item.on_behalf_of })) : null,
    el("span", { class: "row meta" }, item.due ? [tn("due", { when: when(item.due, true) }),
        item.due_working_time ? t("in_brackets", { text: item.due_working_time }) : null,
        item.due_provisional ? [" ", provisionalBadge()] : null] : t("no_deadline"),
      item.overdue ? overdueBadge() : null)), bulkResult(item))));
  bulkSync();
  if (!items.length) {
    $("inbox-list").append(el("li", { class: "empty" }, t("inbox_empty")));
  } else if (total > items.length) {
    $("inbox-list").append(el("li", { class: "empty" },
      t("inbox_more", { shown: items.length, more: total - items.length })));
  }
}

provide({ loadInbox, renderInbox });
