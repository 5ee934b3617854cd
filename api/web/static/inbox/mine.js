// My requests: the second tab.
import { call, errorBox } from "./api.js";
import { $, el } from "./dom.js";
import { money, overdueBadge, statusBadge, typeTitle, when } from "./format.js";
import { openRequest } from "./hooks.js";
import { t, tn } from "./i18n.js";
import { API } from "./routes.js";
import { state } from "./state.js";

// ---- my requests -------------------------------------------------------
export async function loadMine(more) {
  const list = $("mine-list");
  const status = $("mine-status");
  if (!more) { state.mineCursor = null; state.mineRows = []; list.replaceChildren(); }
  list.setAttribute("aria-busy", "true");
  status.replaceChildren(el("p", { class: "meta" }, t("loading")));
  $("mine-more").hidden = true;
  try {
    const data = await call(API.list, {
      query: {
        assignee: $("mine-scope").value,
        requester: $("mine-requester").value.trim(),
        cursor: more ? state.mineCursor : null,
        limit: 25,
      },
    });
    status.replaceChildren();
    state.mineRows.push(...data.items);
    for (const row of data.items) list.append(mineItem(row));
    if (!list.children.length) list.append(el("li", { class: "empty" }, t("mine_empty")));
    state.mineCursor = data.next_cursor;
    $("mine-more").hidden = !data.next_cursor;
  } catch (error) {
    if (error.status !== 401) status.replaceChildren(errorBox(error, t("mine_failed")));
  } finally {
    list.removeAttribute("aria-busy");
  }
}

export function mineItem(row) {
  return el("li", null, el("button", {
    type: "button", class: "item", "data-id": row.id,
    "aria-current": row.id === state.selectedId ? "true" : null,
    onclick: () => openRequest(row.id),
  },
  el("span", { class: "item-title" }, row.title),
  el("span", { class: "meta" }, typeTitle(row.type), " · ", money(row.amount), " · ",
    t("mine_by", { user: row.requester })),
  el("span", { class: "row" }, statusBadge(row.status), row.overdue ? overdueBadge() : null,
    el("span", { class: "meta" }, tn("mine_updated", { when: when(row.updated_at) })))));
}
