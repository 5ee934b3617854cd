// Delegations (委托/代理): the fourth tab.
import { call, errorBox, randomKey } from "./api.js";
import { $, el } from "./dom.js";
import { typeTitle, when } from "./format.js";
import { t } from "./i18n.js";
import { state } from "./state.js";
import { TABS } from "./tabs.js";

// ---- delegations (委托/代理, issue 17): a tab under "me" -------------------
export const DELEG_API = {
  list: "GET /v1/me/delegations",
  create: "POST /v1/me/delegations",
  end: "POST /v1/delegations/{id}/end",
};
export const delegations = { items: null };
export const DELEG_STATUS = {
  scheduled: "deleg_status_scheduled", active: "deleg_status_active", ended: "deleg_status_ended",
};

export function delegationItem(d) {
  const mine = d.direction === "given";
  const types = d.request_types === "all" ? t("deleg_all_types") : d.request_types.map(typeTitle).join(", ");
  const end = d.may_end ? el("button", {
    type: "button", class: "deleg-end",
    onclick: async (event) => {
      const button = event.currentTarget;
      button.disabled = true;
      try {
        await call(DELEG_API.end, { params: { id: d.id }, body: {} });
        $("deleg-status").replaceChildren(el("p", { class: "meta" }, t("deleg_ended")));
        await loadDelegations();
      } catch (error) {
        button.disabled = false;
        if (error.status !== 401) $("deleg-status").replaceChildren(errorBox(error, t("deleg_end_failed")));
      }
    },
  }, t("deleg_end")) : null;
  return el("li", { class: "card item deleg-item", "data-id": d.id },
    el("span", { class: "row" },
      el("span", { class: "item-title" },
        mine ? t("deleg_given", { to: d.to }) : t("deleg_received", { from: d.from })),
      el("span", { class: "badge" + (d.status === "active" ? " info" : "") }, t(DELEG_STATUS[d.status] || "deleg_status_ended")),
      d.source === "org" ? el("span", { class: "badge" }, t("deleg_from_org")) : null),
    el("span", { class: "meta" }, when(d.starts_at), " – ", when(d.ends_at)),
    el("span", null, types),
    d.reason ? el("span", { class: "meta" }, d.reason) : null,
    end ? el("span", { class: "row" }, end) : null);
}

export function renderDelegations() {
  const list = $("deleg-list");
  list.replaceChildren(...(delegations.items || []).map(delegationItem));
  if (delegations.items && !delegations.items.length) list.append(el("li", { class: "empty" }, t("deleg_none")));
  const select = $("deleg-types");
  const chosen = new Set([...select.selectedOptions].map((o) => o.value));
  select.replaceChildren(...Object.keys(state.titles).sort().map((type) =>
    el("option", { value: type, selected: chosen.has(type) }, typeTitle(type))));
}

export async function loadDelegations() {
  $("deleg-list").setAttribute("aria-busy", "true");
  try {
    delegations.items = (await call(DELEG_API.list)).items;
    renderDelegations();
  } catch (error) {
    if (error.status !== 401) $("deleg-status").replaceChildren(errorBox(error, t("deleg_load_failed")));
  } finally {
    $("deleg-list").removeAttribute("aria-busy");
  }
}


// The tab (after Notifications), and the form's and the language switch's listeners.
export function setupDelegations() {
  const tab = el("button", {
    type: "button", role: "tab", id: "tab-delegations", "aria-controls": "panel-delegations",
    "aria-selected": "false", tabindex: "-1", "data-i18n": "deleg_tab",
  }, "Delegations");
  $("tab-notices").after(tab);
  TABS.push(["tab-delegations", "panel-delegations"]);
  tab.addEventListener("click", () => loadDelegations());
  tab.addEventListener("keydown", () => setTimeout(() => {
    if (!$("panel-delegations").hidden) loadDelegations();
  }));
  $("deleg-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const iso = (id) => ($(id).value ? new Date($(id).value).toISOString() : null);
    const types = [...$("deleg-types").selectedOptions].map((o) => o.value);
    const body = {
      to: $("deleg-to").value.trim(),
      ends_at: iso("deleg-ends"),
      request_types: types.length ? types : "all",
      reason: $("deleg-reason").value,
    };
    if (iso("deleg-starts")) body.starts_at = iso("deleg-starts");
    const button = $("deleg-create");
    button.disabled = true;
    try {
      await call(DELEG_API.create, { body, idempotencyKey: randomKey() });
      $("deleg-status").replaceChildren(el("p", { class: "meta" }, t("deleg_created")));
      $("deleg-form").reset();
      await loadDelegations();
    } catch (error) {
      if (error.status !== 401) $("deleg-status").replaceChildren(errorBox(error, t("deleg_create_failed")));
    } finally {
      button.disabled = false;
    }
  });
  $("deleg-refresh").addEventListener("click", () => loadDelegations());
  for (const button of document.querySelectorAll("[data-lang]")) {
    // After the page's own switch (registered below) has changed the language.
    button.addEventListener("click", () => setTimeout(() => { if (delegations.items) renderDelegations(); }));
  }
}
