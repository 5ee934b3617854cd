// The header's link to the SLA report, shown to those who may open it (API.reports).
import { call } from "./api.js";
import { $ } from "./dom.js";
import { API } from "./routes.js";

export async function showReportLinks() {
  const link = $("reports-link");
  link.hidden = true;
  try {
    const reports = await call(API.reports);
    link.hidden = !reports.sla;
  } catch { /* not shown */ }
}
