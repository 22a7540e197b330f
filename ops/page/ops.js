// ops.js -- the Phoenix ops page: polls GET /v1/ops/overview every 2 s and draws pools,
// replicas, lag, throughput and error sparklines, breakers, the DLQ and recent jobs; a click on
// a job reads GET /v1/ops/jobs/{id}/trace (the data `phx trace` prints) and draws its timeline.
//
// The credential lives in sessionStorage (this tab only, gone when it closes) and travels only
// in the Authorization header -- never in a URL, so no log or Referer can carry it. Every value
// from the API is put on the page with textContent, never as HTML.
"use strict";
(function () {
  const KEY = "phx-ops-credential";
  const POLL_MS = 2000;
  const $ = (id) => document.getElementById(id);
  let timer = null;
  let selected = null;

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    return e;
  }
  const badge = (text, kind) => el("span", { class: "badge b-" + (kind || text) }, text);
  const fmt = (n) => (Number.isInteger(n) || n >= 100 ? Math.round(n).toString() : n.toFixed(n >= 10 ? 1 : 2));
  function ago(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    return s < 60 ? s + " s" : s < 3600 ? Math.round(s / 60) + " min" : Math.round(s / 3600) + " h";
  }

  async function api(path) {
    const cred = sessionStorage.getItem(KEY);
    const r = await fetch(path, {
      headers: { Authorization: "Bearer " + cred, Accept: "application/json" },
      cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer",
    });
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    if (!r.ok) {
      const err = new Error((body && (body.detail || body.title)) || "HTTP " + r.status);
      err.status = r.status;
      throw err;
    }
    return body;
  }

  // A sparkline of values (per-second rates), scaled to its own maximum.
  function spark(values, cls) {
    const NS = "http://www.w3.org/2000/svg", w = 150, h = 28;
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("class", "spark " + cls);
    svg.setAttribute("width", w); svg.setAttribute("height", h);
    const bg = document.createElementNS(NS, "rect");
    bg.setAttribute("width", w); bg.setAttribute("height", h);
    svg.append(bg);
    const max = Math.max(...values, 0.000001);
    const pts = values.map((v, i) =>
      (i * (w - 2) / Math.max(values.length - 1, 1) + 1).toFixed(1) + "," + (h - 2 - (v / max) * (h - 5)).toFixed(1));
    const line = document.createElementNS(NS, "polyline");
    line.setAttribute("points", pts.join(" "));
    svg.append(line);
    const t = document.createElementNS(NS, "title");
    t.textContent = "peak " + fmt(max === 0.000001 ? 0 : max) + "/s";
    svg.append(t);
    return svg;
  }

  // The last complete slot's rate (the current slot is still filling).
  const lastRate = (vals) => (vals.length > 1 ? vals[vals.length - 2] : 0);

  function drawPools(data) {
    const tb = $("pools").tBodies[0];
    tb.replaceChildren();
    for (const p of data.pools) {
      const step = (p.series.step_ms || 2000) / 1000;
      const ok = p.series.ok.map((v) => v / step), er = p.series.err.map((v) => v / step);
      const br = el("td");
      for (const [name, st] of Object.entries(p.breakers)) br.append(badge(name + ": " + st, st));
      const reps = el("td", {}, badge(p.ready + "/" + p.replicas + " ready", p.replicas && p.ready === p.replicas ? "ready" : "notready"));
      if (p.gone) reps.append(badge(p.gone + " gone", "gone"));
      const inst = el("div", { class: "instances" });
      for (const i of p.instances) {
        inst.append(el("div", {}, i.instance + (i.alive ? "" : " (gone " + ago(data.now_ms - i.ts_ms) + ")") +
          (i.alive && !i.ready && i.reason ? " not ready: " + i.reason : "")));
      }
      const name = el("td", {}, el("b", {}, p.pool), inst);
      tb.append(el("tr", { "data-pool": p.pool }, name, reps,
        el("td", { class: "num" }, p.threads ? fmt(p.busy) + " / " + fmt(p.threads) : "-"),
        el("td", { class: "num" }, fmt(p.lag) + (p.lag_max ? " (max " + fmt(p.lag_max) + ")" : "")),
        el("td", {}, spark(ok, "tp"), el("span", { class: "rate" }, fmt(lastRate(ok)) + "/s")),
        el("td", {}, spark(er, "er"), el("span", { class: "rate" }, fmt(lastRate(er)) + "/s")),
        br));
    }
    if (!data.pools.length) tb.append(el("tr", {}, el("td", { colspan: 7 }, "no process has reported a heartbeat")));
  }

  function drawJobs(data) {
    const tb = $("jobs").tBodies[0];
    tb.replaceChildren();
    for (const j of data.recent_jobs) {
      const tr = el("tr", { class: "clickable" + (j.job_id === selected ? " selected" : ""), "data-job": j.job_id },
        el("td", { class: "mono" }, j.job_id), el("td", {}, j.tenant || "-"), el("td", {}, badge(j.state)),
        el("td", {}, j.last_event), el("td", { class: "num" }, ago(data.now_ms - j.last_ms)));
      tr.addEventListener("click", () => showTrace(j.job_id));
      tb.append(tr);
    }
    if (!data.recent_jobs.length) tb.append(el("tr", {}, el("td", { colspan: 5 }, "no job events seen yet")));
  }

  function draw(data) {
    drawPools(data);
    drawJobs(data);
    $("dlq").textContent = data.dlq.messages;
    $("dlq-note").textContent = data.dlq.error ? data.dlq.error :
      data.dlq.partitions + " partitions of " + data.dlq.topic + "; inspect with phx dlq list";
    const replicas = data.pools.reduce((n, p) => n + p.replicas, 0);
    const lag = data.pools.reduce((n, p) => n + p.lag, 0);
    const open = data.pools.reduce((n, p) => n + Object.values(p.breakers).filter((s) => s !== "closed").length, 0);
    $("summary").replaceChildren(
      el("span", {}, el("b", {}, data.pools.length), " pools"), el("span", {}, el("b", {}, replicas), " replicas"),
      el("span", {}, "lag ", el("b", {}, fmt(lag))), el("span", {}, el("b", {}, open), " breakers not closed"),
      el("span", {}, "DLQ ", el("b", {}, data.dlq.messages)));
  }

  function setStatus(text, ok) {
    $("status").textContent = text;
    $("status").className = "status " + (ok ? "ok" : "bad");
  }

  async function poll() {
    try {
      const data = await api("/v1/ops/overview");
      draw(data);
      setStatus("live, updated " + new Date(data.now_ms).toLocaleTimeString(), true);
    } catch (e) {
      if (e.status === 401 || e.status === 403) { signOut(e.message); return; }
      setStatus("error: " + e.message, false);
    }
    timer = setTimeout(poll, POLL_MS);
  }

  async function showTrace(id) {
    selected = id;
    $("trace").hidden = false;
    $("trace-title").textContent = id;
    $("trace-head").textContent = "reading phx.events and phx.results...";
    $("timeline").tBodies[0].replaceChildren();
    $("steps").tBodies[0].replaceChildren();
    for (const tr of $("jobs").tBodies[0].rows) tr.classList.toggle("selected", tr.dataset.job === id);
    let t;
    try {
      t = await api("/v1/ops/jobs/" + encodeURIComponent(id) + "/trace");
    } catch (e) {
      $("trace-head").textContent = "could not read the timeline: " + e.message;
      return;
    }
    if (selected !== id) return;
    const job = t.job || {};
    const tl = t.timeline || [];
    const t0 = tl.length ? tl[0].ts_ms : 0;
    $("trace-head").replaceChildren(badge(job.state || "expired", job.state),
      "tenant " + (job.tenant || "?") + (t.trace_id ? "  trace " + t.trace_id : "") +
      (tl.length ? "  " + tl.length + " entries, " + (tl[tl.length - 1].ts_ms - t0) + " ms first to last" : "") +
      (t.partial ? "  (partial: " + t.detail + ")" : ""));
    const tb = $("timeline").tBodies[0];
    for (const e of tl) {
      const result = e.type === "result";
      let detail = result ? e.worker || "" : e.detail;
      if (detail && typeof detail !== "string") detail = JSON.stringify(detail).slice(0, 200);
      tb.append(el("tr", {}, el("td", { class: "num" }, "+" + (e.ts_ms - t0)), el("td", {}, e.type),
        el("td", { class: "mono" }, e.step || ""), el("td", {}, e.attempt || ""),
        el("td", {}, result ? badge(e.status + (e.error ? " (" + e.error + ")" : ""), e.status) : ""),
        el("td", { class: "num" }, result ? e.duration_ms : ""), el("td", { class: "mono" }, detail || "")));
    }
    const sb = $("steps").tBodies[0];
    for (const [sid, s] of Object.entries(t.steps || {})) {
      const dr = s.first_dispatch_ms && s.last_result_ms ? s.last_result_ms - s.first_dispatch_ms : "";
      sb.append(el("tr", {}, el("td", { class: "mono" }, sid), el("td", {}, badge(s.state || "?", s.state)),
        el("td", {}, s.attempts), el("td", { class: "num" }, dr), el("td", { class: "num" }, s.busy_ms),
        el("td", { class: "mono" }, (s.workers || []).join(", "))));
    }
  }

  function signIn() {
    $("login").hidden = true;
    $("dash").hidden = false;
    $("signout").hidden = false;
    setStatus("connecting...", true);
    clearTimeout(timer);
    poll();
  }

  function signOut(why) {
    clearTimeout(timer);
    sessionStorage.removeItem(KEY);
    $("login").hidden = false;
    $("dash").hidden = true;
    $("signout").hidden = true;
    $("login-error").textContent = why || "";
    setStatus("not connected", false);
  }

  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = $("key").value.trim();
    $("key").value = "";
    if (!v) return;
    sessionStorage.setItem(KEY, v);
    signIn();
  });
  $("signout").addEventListener("click", () => signOut(""));
  $("trace-close").addEventListener("click", () => { selected = null; $("trace").hidden = true; });
  if (sessionStorage.getItem(KEY)) signIn();
})();
