/// The web page served at `/`: no build step, no external assets — HTML, CSS and JavaScript
/// inline, talking to the JSON API of the same server.
///
/// Try it: pick a pipeline, enter a user (or items for an anonymous session, or a text), see
/// the results with scores, metadata and per-stage timings; "like" sends feedback and the list
/// changes. The operator view lists models and versions (the active one starred, metrics, data
/// fingerprint), activates and rolls back with the token, and shows the request rate and p99
/// computed from the server's own `/metrics`.
enum WebPage {
    static let html = #"""
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>recommender</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#222}
header{background:#243447;color:#fff;padding:10px 18px;display:flex;gap:18px;align-items:baseline}
header h1{font-size:18px;margin:0} header span{opacity:.8}
main{display:grid;grid-template-columns:minmax(380px,1fr) minmax(380px,1fr);gap:16px;padding:16px}
section{background:#fff;border:1px solid #dde;border-radius:6px;padding:12px 14px}
h2{font-size:15px;margin:0 0 8px} label{display:block;margin:6px 0 2px;color:#555}
input,select,button{font:inherit;padding:4px 6px} input[type=text],input[type=password]{width:60%}
button{cursor:pointer;border:1px solid #99a;border-radius:4px;background:#eef}
ol#results{padding-left:22px} ol#results li{margin:4px 0}
.score{color:#777;font-variant-numeric:tabular-nums} .meta{color:#456}
#timings,#notes{color:#666;font-size:12px} .error{color:#b00020}
table{border-collapse:collapse;width:100%} td,th{border-bottom:1px solid #eee;padding:3px 5px;text-align:left;font-size:13px}
.live{font-size:20px;font-variant-numeric:tabular-nums}
</style></head>
<body>
<header><h1>recommender</h1><span id="ready">…</span><span>rate <b id="rate">–</b> req/s</span><span>p99 <b id="p99">–</b> ms</span></header>
<main>
<section id="ask">
  <h2>Recommendations</h2>
  <label for="pipeline">Pipeline</label><select id="pipeline"></select>
  <label for="user">User</label><input id="user" type="text" placeholder="e.g. u3"> <button id="recommend-user">For this user</button>
  <label for="items">Anonymous session: items (comma-separated; "+" on a result adds one)</label>
  <input id="items" type="text" placeholder="e.g. i1,i9"> <button id="recommend-session">For this session</button>
  <label for="text">Text</label><input id="text" type="text" placeholder="e.g. dragon castle"> <button id="search">Search</button>
  <p id="message"></p>
  <ol id="results"></ol>
  <div id="timings"></div><div id="notes"></div>
</section>
<section id="operator">
  <h2>Operator</h2>
  <label for="token">Admin token</label><input id="token" type="password" placeholder="bearer token">
  <table><thead><tr><th>model</th><th>version</th><th>kind</th><th>metrics</th><th>data</th><th></th></tr></thead><tbody id="models"></tbody></table>
  <p id="operator-message"></p>
  <h2>Live</h2>
  <div class="live">rate <span id="rate-live">–</span> req/s · p99 <span id="p99-live">–</span> ms</div>
</section>
</main>
<script>
"use strict";
const $ = id => document.getElementById(id);
let last = null;           // the last query, re-run after a like
async function call(method, path, body, token) {
  const headers = {"Content-Type": "application/json"};
  if (token) headers["Authorization"] = "Bearer " + token;
  const response = await fetch(path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
  const text = await response.text();
  let data = null; try { data = JSON.parse(text); } catch (e) { data = text; }
  if (!response.ok) {
    const e = data && data.error ? data.error : {problem: String(text)};
    throw new Error((e.field ? e.field + ": " : "") + e.problem + " (" + response.status + ")");
  }
  return data;
}
function show(message, error, target) { const p = $(target || "message"); p.textContent = message; p.className = error ? "error" : ""; }
async function loadPipelines() {
  const data = await call("GET", "/v1/pipelines");
  $("pipeline").innerHTML = "";
  for (const p of data.pipelines) { const o = document.createElement("option"); o.value = p.name; o.textContent = p.name + " (" + p.sources.map(s => s.model).join(", ") + ")"; $("pipeline").appendChild(o); }
}
async function run(query) {
  last = query;
  const pipeline = encodeURIComponent($("pipeline").value);
  try {
    let data;
    if (query.kind === "user") data = await call("GET", `/v1/pipelines/${pipeline}/users/${encodeURIComponent(query.user)}/recommendations?k=10`);
    else if (query.kind === "session") data = await call("POST", `/v1/pipelines/${pipeline}/sessions`, {items: query.items, k: 10});
    else data = await call("POST", `/v1/pipelines/${pipeline}/search`, {text: query.text, k: 10});
    render(data); show(data.items.length + " results from " + Object.entries(data.models).map(([m, v]) => m + " v" + v).join(", "));
  } catch (e) { show(e.message, true); }
}
function render(data) {
  const list = $("results"); list.innerHTML = "";
  for (const r of data.items) {
    const li = document.createElement("li"); li.className = "result"; li.dataset.item = r.item;
    const meta = r.metadata ? Object.entries(r.metadata).map(([k, v]) => k + ": " + v).join(" · ") : "";
    li.innerHTML = `<b class="item"></b> <span class="score"></span> <span class="meta"></span> <button class="like" title="like">♥ like</button> <button class="add" title="add to the session">+</button>`;
    li.querySelector(".item").textContent = r.item; li.querySelector(".score").textContent = r.score.toFixed(4); li.querySelector(".meta").textContent = meta;
    li.querySelector(".like").onclick = () => like(r.item);
    li.querySelector(".add").onclick = () => { const items = $("items").value.split(",").map(s => s.trim()).filter(s => s); items.push(r.item); $("items").value = items.join(","); };
    list.appendChild(li);
  }
  const stages = ["transform", "preprocess", "similarity", "scoring", "postprocess", "results", "total"];
  $("timings").textContent = "stages (µs): " + stages.filter(s => s in data.timings).map(s => s + " " + data.timings[s].toFixed(0)).join(", ");
  $("notes").textContent = data.notes.join("; ");
}
async function like(item) {
  const user = $("user").value.trim();
  try {
    if (last && last.kind === "user" && user) { await call("POST", "/v1/feedback", {user, item, type: "like"}); await run(last); show("liked " + item + "; the list now folds it in"); }
    else { const items = $("items").value.split(",").map(s => s.trim()).filter(s => s); items.push(item); $("items").value = items.join(","); await run({kind: "session", items}); show("liked " + item + " (added to the session)"); }
  } catch (e) { show(e.message, true); }
}
$("recommend-user").onclick = () => { const user = $("user").value.trim(); if (!user) return show("enter a user", true); run({kind: "user", user}); };
$("recommend-session").onclick = () => { const items = $("items").value.split(",").map(s => s.trim()).filter(s => s); if (!items.length) return show("enter items", true); run({kind: "session", items}); };
$("search").onclick = () => { const text = $("text").value; if (!text.trim()) return show("enter a text", true); run({kind: "text", text}); };
async function loadModels() {
  try {
    const data = await call("GET", "/v1/models"); const body = $("models"); body.innerHTML = "";
    for (const m of data.models) {
      m.versions.forEach((v, n) => {
        const tr = document.createElement("tr"); tr.dataset.model = m.name; tr.dataset.version = v.version; if (v.active) tr.className = "active";
        const metrics = Object.entries(v.metrics).map(([k, x]) => k + " " + (+x).toFixed(4)).join(", ");
        tr.innerHTML = `<td>${n === 0 ? "<b></b>" : ""}</td><td class="version"></td><td></td><td></td><td><code></code></td><td></td>`;
        if (n === 0) tr.cells[0].firstChild.textContent = m.name;
        tr.cells[1].textContent = (v.active ? "★ " : "") + "v" + v.version; tr.cells[2].textContent = v.kind; tr.cells[3].textContent = metrics;
        tr.cells[4].firstChild.textContent = v.fingerprint.slice(0, 12);
        if (!v.active) { const b = document.createElement("button"); b.className = "activate"; b.textContent = "activate"; b.onclick = () => admin(`/v1/models/${encodeURIComponent(m.name)}/activate`, {version: v.version}); tr.cells[5].appendChild(b); }
        else { const b = document.createElement("button"); b.className = "rollback"; b.textContent = "roll back"; b.onclick = () => admin(`/v1/models/${encodeURIComponent(m.name)}/rollback`); tr.cells[5].appendChild(b); }
        body.appendChild(tr);
      });
    }
  } catch (e) { show(e.message, true, "operator-message"); }
}
async function admin(path, body) {
  try { const v = await call("POST", path, body, $("token").value); show(v.model + ": v" + v.version + " is active", false, "operator-message"); await loadModels(); }
  catch (e) { show(e.message, true, "operator-message"); }
}
// Live request rate and p99 from the server's own /metrics (deltas between two scrapes).
let previous = null;
function parseMetrics(text) {
  let total = 0; const buckets = {};
  for (const line of text.split("\n")) {
    if (line.startsWith("http_requests_total{")) total += parseFloat(line.slice(line.lastIndexOf(" ") + 1));
    else if (line.startsWith("http_request_duration_seconds_bucket{")) {
      const le = /le="([^"]+)"/.exec(line)[1]; buckets[le] = (buckets[le] || 0) + parseFloat(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return {time: performance.now(), total, buckets};
}
function p99(now, before) {
  const bounds = Object.keys(now.buckets).filter(b => b !== "+Inf").map(parseFloat).sort((a, b) => a - b);
  const count = (now.buckets["+Inf"] || 0) - ((before && before.buckets["+Inf"]) || 0);
  if (count <= 0) return null;
  for (const b of bounds) { const key = Object.keys(now.buckets).find(k => parseFloat(k) === b);
    const c = now.buckets[key] - ((before && before.buckets[key]) || 0); if (c >= 0.99 * count) return b * 1000; }
  return Infinity;
}
async function live() {
  try {
    const text = await (await fetch("/metrics")).text(); const now = parseMetrics(text);
    if (previous) {
      const rate = (now.total - previous.total) / ((now.time - previous.time) / 1000); const p = p99(now, previous);
      $("rate").textContent = $("rate-live").textContent = rate.toFixed(1);
      $("p99").textContent = $("p99-live").textContent = p === null ? "–" : (p === Infinity ? "> 5000" : "≤ " + p.toFixed(2));
    }
    previous = now;
    const ready = await fetch("/health/ready"); $("ready").textContent = ready.ok ? "ready" : "not ready";
  } catch (e) { $("ready").textContent = "unreachable"; }
}
loadPipelines().catch(e => show(e.message, true)); loadModels(); live(); setInterval(live, 2000);
</script>
</body></html>
"""#
}
