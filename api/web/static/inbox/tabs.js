// The tabs (ARIA tabs pattern: arrow keys move between them).
import { $ } from "./dom.js";
import { loadMine } from "./mine.js";
import { openNewRequest } from "./newreq.js";
import { loadNotices } from "./notices.js";
import { state } from "./state.js";

// ---- tabs (arrow keys move between them, as in the ARIA tabs pattern) ---
export const TABS = [["tab-inbox", "panel-inbox"], ["tab-mine", "panel-mine"],
  ["tab-new", "panel-new"], ["tab-notices", "panel-notices"]];

export function selectTab(tabId, focus) {
  for (const [id, panel] of TABS) {
    const selected = id === tabId;
    $(id).setAttribute("aria-selected", String(selected));
    $(id).tabIndex = selected ? 0 : -1;
    $(panel).hidden = !selected;
  }
  if (focus) $(tabId).focus();
  if (tabId === "tab-mine" && !state.mineLoaded) { state.mineLoaded = true; loadMine(false); }
  if (tabId === "tab-notices") loadNotices(false);
  if (tabId === "tab-new") openNewRequest();
}

export function onTabKey(event) {
  const ids = TABS.map(([id]) => id);
  const at = ids.indexOf(event.currentTarget.id);
  const next = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: ids.length - 1 }[event.key];
  if (next === undefined) return;
  event.preventDefault();
  selectTab(ids[(next + ids.length) % ids.length], true);
}
