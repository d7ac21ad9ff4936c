/**
 * The dashboard: one static page that reads the API with a credential the user pastes (kept in this tab's
 * sessionStorage only) and shows every pool's queue and agents, refreshed every two seconds.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>DAA Mesh</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #1b1b1b; }
  table { border-collapse: collapse; margin-top: 1rem; }
  th, td { padding: .3rem .7rem; border-bottom: 1px solid #ddd; text-align: right; }
  th:first-child, td:first-child { text-align: left; }
  #status { color: #666; margin-left: 1rem; }
  input { width: 28rem; }
</style>
</head>
<body>
<h1>DAA Mesh</h1>
<form id="auth"><label>Credential <input id="token" type="password" autocomplete="off" placeholder="DAA_ADMIN_KEY or an API key"></label>
<button>Use</button><span id="status"></span></form>
<table id="pools"><thead><tr><th>pool</th><th>waiting</th><th>queued</th><th>leased</th><th>succeeded</th><th>dead</th><th>cancelled</th><th>agents running</th><th>agents (all)</th></tr></thead><tbody></tbody></table>
<p><a href="/openapi.json">OpenAPI document</a></p>
<script src="/dashboard.js"></script>
</body>
</html>
`;

/** The dashboard's script, served as a file so the page's Content-Security-Policy can forbid inline scripts. */
export const DASHBOARD_JS = `const $ = (id) => document.getElementById(id);
$("token").value = sessionStorage.getItem("daa-token") || "";
$("auth").onsubmit = (e) => { e.preventDefault(); sessionStorage.setItem("daa-token", $("token").value); refresh(); };
async function refresh() {
  const token = sessionStorage.getItem("daa-token");
  if (!token) { $("status").textContent = "paste a credential to start"; return; }
  try {
    const res = await fetch("/v1/pools", { headers: { authorization: "Bearer " + token } });
    const body = await res.json();
    if (!res.ok) { $("status").textContent = body.error ? body.error.message : res.statusText; return; }
    const rows = body.pools.map((p) => {
      const agents = Object.values(p.agents).reduce((a, b) => a + b, 0);
      const cells = [p.pool, p.queue.waiting, p.queue.queued, p.queue.leased, p.queue.succeeded, p.queue.dead, p.queue.cancelled, p.agents.running, agents];
      const tr = document.createElement("tr");
      for (const v of cells) { const td = document.createElement("td"); td.textContent = String(v); tr.appendChild(td); }
      return tr;
    });
    $("pools").tBodies[0].replaceChildren(...rows);
    $("status").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (err) { $("status").textContent = String(err); }
}
refresh();
setInterval(refresh, 2000);
`;
