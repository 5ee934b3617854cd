// The admin's outbox page (templates/outbox.html): deliveries, and retrying failed ones.
const TOKEN_KEY = "approvals.token";
let memoryToken = null;
const $ = (id) => document.getElementById(id);
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
  if (!token()) { $("signin").hidden = false; say("Sign in with an admin's token."); return; }
  const status = $("status").value;
  say("Loading…");
  try {
    const page = await call("GET", "/v1/admin/deliveries?limit=200" + (status ? "&status=" + status : ""));
    const tbody = $("rows");
    tbody.replaceChildren();
    for (const d of page.items) {
      const tr = document.createElement("tr");
      cell(tr, d.id);
      cell(tr, new Date(d.created_at).toLocaleString());
      cell(tr, d.kind + (d.request_id ? " · " + d.request_id : ""));
      cell(tr, d.recipient + (d.target ? " (" + d.target + ")" : ""));
      cell(tr, d.channel);
      cell(tr, d.attempts);
      cell(tr, d.status + (d.last_error ? ": " + d.last_error : ""), d.last_error ? "err" : "");
      const td = cell(tr, "");
      if (d.status === "failed" || d.status === "skipped") {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = "Retry";
        b.addEventListener("click", async () => {
          b.disabled = true;
          try { await call("POST", "/v1/admin/deliveries/" + d.id + "/retry"); say("#" + d.id + " is due again."); load(); }
          catch (e) { say(e.message); b.disabled = false; }
        });
        td.appendChild(b);
      }
      tbody.appendChild(tr);
    }
    say(page.items.length + " deliveries" + (page.next_before ? " (newest 200)" : ""));
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
