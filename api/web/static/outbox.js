// The admin's outbox page (templates/outbox.html): deliveries, and retrying failed ones.
const TOKEN_KEY = "approvals.token";
let memoryToken = null;
const $ = (id) => document.getElementById(id);
// The page's words in its language (api/web/outbox.py renders them into data-words).
const WORDS = JSON.parse($("outbox").dataset.words || "{}");
const t = (key, vars) => String(WORDS[key] ?? key).replace(/\{(\w+)\}/g,
  (match, name) => (vars && name in vars ? String(vars[name]) : match));
const token = () => { try { return sessionStorage.getItem(TOKEN_KEY) || memoryToken; } catch { return memoryToken; } };
const say = (text) => { $("message").textContent = text; };
const cell = (row, text, cls) => {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
};
async function call(method, path) {
  const resp = await fetch(path, { method, headers: { Authorization: "Bearer " + token() } });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error((body.error && body.error.message) || ("HTTP " + resp.status));
  return body;
}
async function load() {
  if (!token()) { $("signin").hidden = false; say(t("need_token")); return; }
  const status = $("status").value;
  say(t("loading"));
  try {
    const page = await call("GET", "/v1/admin/deliveries?limit=200" + (status ? "&status=" + status : ""));
    const tbody = $("rows");
    tbody.replaceChildren();
    for (const d of page.items) {
      const tr = document.createElement("tr");
      cell(tr, d.id);
      cell(tr, new Date(d.created_at).toLocaleString(document.documentElement.lang));
      cell(tr, d.kind + (d.request_id ? " · " + d.request_id : ""));
      cell(tr, d.recipient + (d.target ? " (" + d.target + ")" : ""));
      cell(tr, d.channel);
      cell(tr, d.attempts);
      cell(tr, d.status + (d.last_error ? ": " + d.last_error : ""), d.last_error ? "err" : "");
      const td = cell(tr, "");
      if (d.status === "failed" || d.status === "skipped") {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = t("retry");
        b.addEventListener("click", async () => {
          b.disabled = true;
          try { await call("POST", "/v1/admin/deliveries/" + d.id + "/retry"); say(t("due_again", { id: d.id })); load(); }
          catch (e) { say(e.message); b.disabled = false; }
        });
        td.appendChild(b);
      }
      tbody.appendChild(tr);
    }
    say(t("count", { n: page.items.length }) + (page.next_before ? t("newest") : ""));
  } catch (e) { say(e.message); }
}
$("signin").addEventListener("submit", (ev) => {
  ev.preventDefault();
  memoryToken = $("token").value.trim();
  try { sessionStorage.setItem(TOKEN_KEY, memoryToken); } catch { /* memory only */ }
  $("signin").hidden = true;
  load();
});
$("reload").addEventListener("click", load);
$("status").addEventListener("change", load);
load();
