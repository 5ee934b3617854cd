// Deciding in bulk (批量审批) from the pending list.
import { call, errorBox, randomKey } from "./api.js";
import { $, el } from "./dom.js";
import { statusBadge } from "./format.js";
import { renderInbox } from "./hooks.js";
import { t } from "./i18n.js";
import { API } from "./routes.js";
import { state } from "./state.js";

// ---- deciding in bulk (批量审批): checkboxes on the pending list, one call for all ----
// Each selected step goes with the version the inbox listed, so a request that changed
// since is refused, not decided blind; each row then shows its own outcome until the
// list is refreshed.
export const bulk = { selected: new Set(), results: new Map(), action: null, last: null };

export function bulkBox(item) {
  const result = bulk.results.get(item.request_id);
  return el("input", {
    type: "checkbox", class: "bulk-pick", "data-request-id": item.request_id,
    "aria-label": t("bulk_pick", { title: item.title }),
    checked: bulk.selected.has(item.request_id),
    disabled: Boolean(result && result.outcome === "done"),
    onchange: (event) => {
      if (event.target.checked) bulk.selected.add(item.request_id);
      else bulk.selected.delete(item.request_id);
      bulkSync();
    },
  });
}

export function bulkResult(item) {
  const result = bulk.results.get(item.request_id);
  if (!result) return null;
  if (result.outcome === "done") {
    return el("p", { class: "bulk-result meta", "data-outcome": "done" },
      el("span", { class: "badge ok" }, t(bulk.action === "reject" ? "bulk_done_reject" : "bulk_done_approve")),
      " ", t("bulk_now"), " ", statusBadge(result.status));
  }
  const error = result.error || {};
  return el("p", { class: "bulk-result error", role: "alert", "data-outcome": "refused" },
    el("strong", null, t("bulk_refused")), " ", error.message || "", " ",
    el("span", { class: "code" }, "(" + (result.http_status || t("no_status")) + " " + (error.code || "") + ")"));
}

export function bulkSync() {
  const pending = new Set(state.inbox.map((item) => item.request_id));
  for (const id of [...bulk.selected]) {
    const result = bulk.results.get(id);
    if (!pending.has(id) || (result && result.outcome === "done")) bulk.selected.delete(id);
  }
  $("bulk-form").hidden = !state.inbox.length;
  $("bulk-count").textContent = t("bulk_selected", { count: bulk.selected.size });
  for (const id of ["bulk-approve", "bulk-reject"]) $(id).disabled = !bulk.selected.size;
}

export async function bulkDecide(action) {
  const message = $("bulk-message");
  const comment = $("bulk-comment").value.trim();
  const items = state.inbox.filter((item) => bulk.selected.has(item.request_id))
    .map((item) => ({ request_id: item.request_id, version_seen: item.version }));
  if (!items.length) return;
  const body = comment ? { action, comment, items } : { action, items };
  // A retry of the same call after a 503 or a lost answer reuses its key: the server
  // then decides nothing twice.
  const sig = JSON.stringify(body);
  const key = bulk.last && bulk.last.sig === sig ? bulk.last.key : randomKey();
  bulk.last = { sig, key };
  for (const id of ["bulk-approve", "bulk-reject", "bulk-all"]) $(id).disabled = true;
  message.replaceChildren(el("p", { class: "meta", role: "status" }, t("sending")));
  let data;
  try {
    data = await call(API.bulkDecide, { body, idempotencyKey: key });
  } catch (error) {
    if (error.status === 401) return;
    if (error.status !== 503 && error.status !== 0) bulk.last = null;
    message.replaceChildren(errorBox(error, t("bulk_failed")));
    $("bulk-all").disabled = false;
    bulkSync();
    return;
  }
  bulk.last = null;
  bulk.action = action;
  for (const outcome of data.items) bulk.results.set(outcome.request_id, outcome);
  message.replaceChildren(el("p", { class: "notice", role: "status" },
    t("bulk_summary", { done: data.summary.done, refused: data.summary.refused })));
  $("bulk-all").disabled = false;
  renderInbox();
}

$("bulk-approve").addEventListener("click", () => bulkDecide("approve"));
$("bulk-reject").addEventListener("click", () => bulkDecide("reject"));
$("bulk-all").addEventListener("click", () => {
  const open = state.inbox.filter((item) => {
    const result = bulk.results.get(item.request_id);
    return !(result && result.outcome === "done");
  });
  const all = open.length && open.every((item) => bulk.selected.has(item.request_id));
  for (const item of open) {
    if (all) bulk.selected.delete(item.request_id); else bulk.selected.add(item.request_id);
  }
  renderInbox();
});
// A refreshed list shows the requests as they are now: the outcomes of the last bulk
// call are cleared with it.
$("inbox-refresh").addEventListener("click", () => { bulk.results.clear(); $("bulk-message").replaceChildren(); });
