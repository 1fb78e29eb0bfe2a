// The dashboard page: polls /api/state every second, draws with uPlot (vendored). No build step.
// Everything from the server is put in the page as text (never as HTML).
"use strict";

const POLL_MS = 1000;
const TOKEN_KEY = "updown-dashboard-token";
const $ = (sel, root) => (root || document).querySelector(sel);
const charts = {};      // asset -> {plot, start, prob: [[t, v]], ask: [[t, v]], el}
let equityPlot = null;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function fmt(v, digits) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  return typeof v === "number" ? v.toFixed(digits === undefined ? 2 : digits) : String(v);
}

function signed(v) {
  if (typeof v !== "number") return "–";
  return (v >= 0 ? "+" : "") + v.toFixed(2);
}

function dur(s) {
  if (typeof s !== "number") return "–";
  s = Math.floor(s);
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
  return Math.floor(s / 3600) + "h" + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
}

function hhmmss(t) {
  if (typeof t !== "number") return "–";
  return new Date(t * 1000).toISOString().slice(11, 19);
}

function timeOf(v) {
  if (typeof v === "number") return hhmmss(v);
  if (typeof v === "string") return v.slice(11, 19);
  return "–";
}

function badge(id, text, state) {
  const b = document.getElementById(id);
  b.textContent = text;
  b.dataset.state = state;
}

function fillTable(id, rows) {
  const body = $("#" + id + " tbody");
  body.replaceChildren(...rows.map((cells) => {
    const tr = el("tr");
    for (const c of cells) tr.append(c instanceof Node ? c : el("td", c));
    return tr;
  }));
}

// ---- the token and the buttons ------------------------------------------------------------------
function token() {
  return $("#token").value.trim();
}

function tokenFromHash() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    localStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname);   // keep it out of the address bar and history
  }
  $("#token").value = localStorage.getItem(TOKEN_KEY) || "";
}

function initToken() {
  tokenFromHash();
  window.addEventListener("hashchange", tokenFromHash);   // the URL `start` printed, pasted into this tab
  $("#token").addEventListener("change", () => localStorage.setItem(TOKEN_KEY, token()));
}

async function act(action, question) {
  const msg = $("#control-msg");
  if (question && !window.confirm(question)) return;
  msg.textContent = action + "…";
  msg.dataset.state = "";
  try {
    const r = await fetch("/api/control/" + action, {method: "POST", headers: {"X-Dashboard-Token": token()}});
    const body = await r.json();
    msg.textContent = body.ok ? body.message : (action + " refused: " + body.error);
    msg.dataset.state = body.ok ? "ok" : "bad";
  } catch (e) {
    msg.textContent = action + " failed: " + e;
    msg.dataset.state = "bad";
  }
  poll();
}

// ---- charts ---------------------------------------------------------------------------------------
function chartWidth(container) {
  return Math.max(300, container.clientWidth || 500);
}

function assetCard(asset) {
  if (charts[asset]) return charts[asset];
  const node = $("#asset-tpl").content.firstElementChild.cloneNode(true);
  node.id = "asset-" + asset;
  node.dataset.asset = asset;
  $(".name", node).textContent = asset;
  $("#assets").append(node);
  const box = $(".chart", node);
  const opts = {
    width: chartWidth(box), height: 220,
    scales: {x: {time: true}, p: {auto: false, range: [0, 1]}},
    axes: [{stroke: "#8b96a3", grid: {stroke: "#2a3440"}}, {scale: "p", stroke: "#8b96a3", grid: {stroke: "#2a3440"}}],
    series: [{}, {label: "prob_up", scale: "p", stroke: "#58a6ff", width: 2, spanGaps: true},
             {label: "Up ask", scale: "p", stroke: "#e3b341", width: 1.5, spanGaps: true}],
  };
  const plot = new uPlot(opts, [[], [], []], box);
  charts[asset] = {plot, node, start: null, end: null, prob: [], ask: []};
  return charts[asset];
}

function appendPoints(list, points) {
  for (const [t, v] of points || []) {
    if (!list.length || t > list[list.length - 1][0]) list.push([t, v]);
    else if (t === list[list.length - 1][0]) list[list.length - 1] = [t, v];
  }
}

function aligned(a, b) {
  const times = new Map();
  for (const [t, v] of a) times.set(t, [v, null]);
  for (const [t, v] of b) times.set(t, [(times.get(t) || [null])[0], v]);
  const xs = [...times.keys()].sort((x, y) => x - y);
  return [xs, xs.map((t) => times.get(t)[0]), xs.map((t) => times.get(t)[1])];
}

function drawAsset(asset, info) {
  const c = assetCard(asset);
  const sig = info.signal || {};
  const s = info.series;
  if (s && s.start !== c.start) {
    c.start = s.start;
    c.end = s.end;
    c.prob = [];
    c.ask = [];
  }
  if (s) {
    appendPoints(c.prob, s.prob_up);
    appendPoints(c.ask, s.up_ask);
    c.plot.setData(aligned(c.prob, c.ask), false);
    if (c.start) c.plot.setScale("x", {min: c.start, max: c.end || (c.start + 900)});
  }
  const n = c.node;
  $(".window", n).textContent = s ? hhmmss(s.start) + "–" + hhmmss(s.end) + " UTC" : "";
  $(".prob", n).textContent = fmt(sig.prob_up, 3);
  $(".ask", n).textContent = c.ask.length ? fmt(c.ask[c.ask.length - 1][1], 3) : "–";
  $(".strike", n).textContent = fmt(sig.strike ?? (s && s.strike), 2);
  $(".price", n).textContent = fmt(sig.price, 2);
  $(".direction", n).textContent = sig.problem ? "none (" + sig.problem + ")" : (sig.direction || "–");
  $(".source", n).textContent = sig.source || "–";
  $(".age", n).textContent = typeof sig.age_s === "number" ? sig.age_s.toFixed(1) + "s" + (sig.stale ? " STALE" : "") : "–";
  $(".seq", n).textContent = sig.seq !== undefined && sig.seq !== null ? "seq " + sig.seq : "";
}

function since() {
  let t = Infinity;
  for (const c of Object.values(charts)) {
    const last = c.prob.length ? c.prob[c.prob.length - 1][0] : 0;
    const lastAsk = c.ask.length ? c.ask[c.ask.length - 1][0] : 0;
    t = Math.min(t, Math.min(last, lastAsk || last));
  }
  return Number.isFinite(t) ? t : 0;
}

function drawEquity(points, box) {
  const data = [points.map((p) => p[0]), points.map((p) => p[1])];
  if (!equityPlot) {
    equityPlot = new uPlot({
      width: chartWidth(box), height: 220, scales: {x: {time: true}},
      axes: [{stroke: "#8b96a3", grid: {stroke: "#2a3440"}}, {stroke: "#8b96a3", grid: {stroke: "#2a3440"}}],
      series: [{}, {label: "P&L (USD)", stroke: "#7ee787", width: 2, paths: uPlot.paths.stepped({align: 1})}],
    }, data, box);
  } else {
    equityPlot.setData(data);
  }
}

// ---- the rest of the page -------------------------------------------------------------------------
function drawStatus(d) {
  badge("mode", d.mode, "ok");
  const p = d.pause || {};
  badge("pause-state", p.paused ? "PAUSED" : "not paused", p.paused ? "warn" : "ok");
  $("#pause-state").title = p.reason || "";
  const risk = d.risk || {};
  badge("risk-state", risk.halted ? "HALTED" : (risk.problem ? "risk unreadable" : "risk ok"),
        risk.halted || risk.problem ? "bad" : "ok");
  const today = d.today || {};
  const pnl = typeof risk.pnl_today === "number" ? risk.pnl_today : today.pnl;
  const pnlEl = $("#pnl-today");
  pnlEl.textContent = signed(pnl);
  pnlEl.className = pnl >= 0 ? "pos" : "neg";
  $("#today-counts").textContent = (risk.trades_today ?? today.filled ?? 0) + " trades, " +
    (risk.wins ?? today.wins ?? 0) + " won, " + (risk.losses ?? today.losses ?? 0) + " lost";
  $("#risk-detail").textContent = risk.halted ? "HALTED (" + risk.halt_kind + "): " + risk.halt_reason
    : "losing streak " + (risk.consecutive_losses ?? 0) + (p.paused ? "; " + (p.reason || "paused") : "");
  const open = d.open || [];
  $("#open-positions").textContent = open.length ? open.length + " open position(s): " +
    open.map((o) => o.asset + " " + o.side + " $" + fmt(o.amount) + " (" + o.state + ")").join("; ") : "no open position";
  const ex = d.executor || {};
  $("#executor-state").textContent = "executor " + (ex.status || "–") + (ex.reason ? " (" + ex.reason + ")" : "");
  const rows = Object.entries(d.processes || {}).map(([name, pr]) => {
    const st = el("td", pr.state, "state-" + String(pr.state).split(" ")[0]);
    return [name, st, pr.pid || "–", dur(pr.uptime_s), pr.restarts ?? 0,
            typeof pr.heartbeat_age_s === "number" ? pr.heartbeat_age_s.toFixed(1) + "s ago" : "–"];
  });
  rows.unshift(["monitor", el("td", d.monitor.state, "state-" + (d.monitor.state === "running" ? "running" : "down")),
                d.monitor.pid || "–", dur(d.monitor.uptime_s), "", ""]);
  fillTable("procs", rows);
  $("#procs tbody").querySelectorAll("tr").forEach((tr, i) => { tr.id = "proc-" + (i ? Object.keys(d.processes)[i - 1] : "monitor"); });
}

function drawJournals(d) {
  fillTable("decisions", (d.decisions || []).map((x) => [timeOf(x.ts), x.asset, x.slug || "–", x.action,
    el("td", x.reason || "", "reason")]));
  fillTable("trades", (d.trades || []).map((t) => {
    const pnl = el("td", typeof t.pnl === "number" ? signed(t.pnl) : "–", typeof t.pnl === "number" ? (t.pnl >= 0 ? "pos" : "neg") : "");
    return [timeOf(t.ts || t.last_ts), t.asset, t.side || "–", fmt(t.amount), fmt(t.price, 3), t.state, t.outcome || "–", pnl];
  }));
  const eq = d.equity || [];   // [start at 0, one point per settlement ..., now]
  $("#equity-total").textContent = eq.length ? signed(eq[eq.length - 1][1]) + " USD over " + (eq.length - 2) +
    " settled trade(s)" : "no settled trade yet";
  drawEquity(eq, $("#equity-chart"));
}

let inFlight = false;
async function poll() {
  if (inFlight) return;
  inFlight = true;
  try {
    const r = await fetch("/api/state?since=" + since(), {cache: "no-store"});
    if (!r.ok) throw new Error("HTTP " + r.status);
    const d = await r.json();
    drawStatus(d);
    for (const [asset, info] of Object.entries(d.assets || {})) drawAsset(asset, info);
    drawJournals(d);
    badge("conn", "live " + hhmmss(d.at), "ok");
    document.body.dataset.updated = String(d.at);
  } catch (e) {
    badge("conn", "no answer from the dashboard (" + e.message + ")", "bad");
  } finally {
    inFlight = false;
  }
}

function resize() {
  for (const c of Object.values(charts)) c.plot.setSize({width: chartWidth($(".chart", c.node)), height: 220});
  if (equityPlot) equityPlot.setSize({width: chartWidth($("#equity-chart")), height: 220});
}

initToken();
$("#btn-pause").addEventListener("click", () => act("pause"));
$("#btn-unpause").addEventListener("click", () => act("unpause"));
$("#btn-resume").addEventListener("click", () => act("resume", "Clear the risk halt and allow trading again?"));
window.addEventListener("resize", resize);
poll();
setInterval(poll, POLL_MS);
