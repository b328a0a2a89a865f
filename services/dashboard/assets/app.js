// callpulse dashboard: reads /api/v1 (the same API documented in
// docs/dashboard.md) and draws with the DOM and SVG. Data only ever goes
// into textContent and attributes, never into HTML, so a name cannot inject
// markup. The login token stays in sessionStorage (this tab only).
"use strict";

(function () {
  const TOKEN_KEY = "callpulse.token";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const LEVEL_NAMES = { england: "England", region: "Region", icb: "ICB", pcn: "PCN", practice: "Practice" };
  const CHILD_HEADINGS = { region: "Regions", icb: "ICBs", pcn: "PCNs", practice: "Practices" };
  const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
  // Okabe-Ito colours, each with a pattern so colour is never the only cue.
  const SERIES = [
    { key: "answered", label: "Answered", color: "#0072B2", pattern: "solid" },
    { key: "callback_requested", label: "Callback requested", color: "#009E73", pattern: "dots" },
    { key: "abandoned", label: "Abandoned", color: "#D55E00", pattern: "diagonal" },
    { key: "missed", label: "Missed", color: "#E69F00", pattern: "cross" },
  ];

  const state = { me: null, node: null, day: null, dayPinned: false, rank: "abandoned_pct", timer: null, busy: false, pending: false, allChildren: false };
  // Children beyond this many (busiest first) wait behind a "show all" button: a long list buries the page on a phone.
  const CHILDREN_SHOWN = 12;
  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------ formatting
  const nf = new Intl.NumberFormat("en-GB");
  function count(n) { return n == null ? "–" : nf.format(n); }
  function pct(v) { return v == null ? "–" : v.toFixed(1) + " %"; }
  function bound(s) {
    if (s == null) return "no answered calls";
    if (s === "inf") return "over 1 hour";
    if (s < 60) return "≤ " + s + " s";
    return "≤ " + (s / 60) + " min";
  }
  function secs(v) {
    if (v == null) return "–";
    if (v < 120) return Math.round(v) + " s";
    return (v / 60).toFixed(1) + " min";
  }
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null) continue;
      if (k === "class") node.className = v; else node.setAttribute(k, v);
    }
    for (const child of children) {
      if (child == null) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const child of children) if (child != null) node.append(child);
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
  function nodeHash(level, code) { return "#/" + level + "/" + encodeURIComponent(code); }

  // ------------------------------------------------------------ API
  class ApiError extends Error { constructor(status, message) { super(message); this.status = status; } }
  async function api(path, params) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) throw new ApiError(401, "not signed in");
    const query = params ? "?" + new URLSearchParams(Object.entries(params).filter(([, v]) => v != null)) : "";
    const response = await fetch("/api/v1/" + path + query, { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    if (!response.ok) throw new ApiError(response.status, (body && body.error) || response.statusText);
    return body;
  }

  // ------------------------------------------------------------ login
  function showLogin(message) {
    stopTimer();
    state.me = null;
    $("dashboard").hidden = true;
    $("logout").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    $("status").textContent = "";
    $("token").focus();
  }
  async function signIn(event) {
    event.preventDefault();
    const token = $("token").value.trim();
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token").value = "";
    try {
      await start();
    } catch (err) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin(err.status === 401 ? "That token was not accepted." : "Could not sign in: " + err.message);
    }
  }
  function signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    location.hash = "";
    showLogin("Signed out.");
  }

  // ------------------------------------------------------------ navigation
  function currentNode() {
    const match = /^#\/(england|region|icb|pcn|practice)\/([A-Za-z0-9]+)$/.exec(location.hash);
    if (match) return { level: match[1], code: decodeURIComponent(match[2]).toUpperCase() };
    return state.me ? state.me.root : null;
  }
  async function start() {
    state.me = await api("me");
    if (!state.dayPinned) state.day = state.me.day;
    $("login").hidden = true;
    $("dashboard").hidden = false;
    $("logout").hidden = false;
    await refresh(true);
    startTimer();
  }
  function startTimer() {
    stopTimer();
    const seconds = (state.me && state.me.refresh_seconds) || 5;
    state.timer = setInterval(() => refresh(false), seconds * 1000);
  }
  function stopTimer() { if (state.timer) clearInterval(state.timer); state.timer = null; }

  async function refresh(navigated) {
    if (!state.me) return;
    // One refresh at a time; a navigation during one runs right after it.
    if (state.busy) { state.pending = state.pending || navigated || "again"; return; }
    state.busy = true;
    const node = currentNode();
    try {
      if (!state.dayPinned) {
        const me = await api("me");
        state.me = me;
        state.day = me.day;
      }
      $("day").value = state.day;
      const base = "nodes/" + node.level + "/" + node.code;
      const day = { day: state.day };
      const [info, summary, series, children, practices, alerts, heat] = await Promise.all([
        api(base), api(base + "/summary", day), api(base + "/series", day), api(base + "/children", day),
        api(base + "/practices", { day: state.day, rank: state.rank, limit: 15 }), api(base + "/alerts"),
        api(base + "/heatmap", { day: state.day, weeks: 4 }),
      ]);
      $("denied").hidden = true;
      renderNode(info, summary);
      renderCards(summary);
      renderSeries(series);
      renderRates(summary);
      renderWaits(summary);
      renderDiversions(summary, series);
      renderAlerts(alerts);
      renderChildren(children);
      renderPractices(practices);
      renderHeat(heat);
      $("status").textContent = "Live · updated " + new Date().toLocaleTimeString("en-GB") +
        " · every " + state.me.refresh_seconds + " s";
      document.body.dataset.loaded = node.level + "/" + node.code + "/" + state.day;
      if (navigated) window.scrollTo(0, 0);
    } catch (err) {
      if (err.status === 401) { sessionStorage.removeItem(TOKEN_KEY); showLogin("Your session has ended: sign in again."); }
      else if (err.status === 403 || err.status === 404 || err.status === 400) {
        $("denied").hidden = false;
        clear($("denied")).append(err.status === 403 ? "Your login may not see this organisation. " : err.message + " ",
          el("a", { href: nodeHash(state.me.root.level, state.me.root.code) }, "Back to your start page"));
        document.body.dataset.loaded = "error/" + err.status;
      } else {
        $("status").textContent = "Could not update (" + err.message + "); retrying";
      }
    } finally {
      state.busy = false;
      if (state.pending) { const again = state.pending === true; state.pending = false; refresh(again); }
    }
  }

  // ------------------------------------------------------------ rendering
  function renderNode(info, summary) {
    $("node-title").textContent = info.name + (info.level === "england" ? "" : " (" + info.code + ")");
    document.title = info.name + ": callpulse";
    const crumbs = clear($("breadcrumb"));
    for (const p of info.path) {
      const label = LEVEL_NAMES[p.level] + ": " + p.name;
      crumbs.append(el("li", {}, p.allowed ? el("a", { href: nodeHash(p.level, p.code) }, p.level === "england" ? "England" : label) : label));
    }
    crumbs.append(el("li", { "aria-current": "page" }, LEVEL_NAMES[info.level]));
    const bits = [LEVEL_NAMES[info.level]];
    if (info.practices != null && info.level !== "practice") bits.push(count(info.practices) + (info.practices === 1 ? " practice" : " practices"));
    bits.push((info.level === "practice" ? (summary.practices_with_calls ? "calls" : "no calls") : count(summary.practices_with_calls) + " with calls") + " on " + longDay(summary.day));
    if (summary.provisional_windows > 0) bits.push("today's figures are provisional until every window closes");
    $("node-meta").textContent = bits.join(" · ");
  }
  function longDay(day) {
    const d = new Date(day + "T12:00:00Z");
    return d.toLocaleDateString("en-GB", { weekday: "long", day: "numeric", month: "long", year: "numeric", timeZone: "UTC" });
  }

  function card(id, cls, label, value, unit, sub) {
    return el("div", { class: "card " + cls, id },
      el("span", { class: "label" }, label),
      el("span", { class: "value", "data-value": value }, count(value), " ", el("span", { class: "unit" }, unit)),
      sub ? el("span", { class: "sub" }, sub) : null);
  }
  function share(n, of) { return of > 0 ? (100 * n / of).toFixed(1) + " % of offered" : ""; }
  function renderCards(s) {
    const c = s.calls;
    clear($("call-cards")).append(
      card("calls-offered", "offered", "Offered", c.offered, "calls"),
      card("calls-answered", "answered", "Answered", c.answered, "calls", share(c.answered, c.offered)),
      card("calls-callback", "callback", "Callback requested", c.callback_requested, "calls", share(c.callback_requested, c.offered)),
      card("calls-abandoned", "abandoned", "Abandoned", c.abandoned, "calls", share(c.abandoned, c.offered)),
      card("calls-missed", "missed", "Missed", c.missed, "calls", share(c.missed, c.offered)));
  }

  function patternDefs() {
    const defs = svg("defs");
    for (const s of SERIES) {
      const p = svg("pattern", { id: "pat-" + s.key, width: 6, height: 6, patternUnits: "userSpaceOnUse" },
        svg("rect", { width: 6, height: 6, fill: s.color }));
      if (s.pattern === "dots") p.append(svg("circle", { cx: 3, cy: 3, r: 1.2, fill: "#fff" }));
      if (s.pattern === "diagonal") p.append(svg("path", { d: "M-1,1 l2,-2 M0,6 l6,-6 M5,7 l2,-2", stroke: "#fff", "stroke-width": 1.2 }));
      if (s.pattern === "cross") p.append(svg("path", { d: "M0,3 h6 M3,0 v6", stroke: "#fff", "stroke-width": 1 }));
      defs.append(p);
    }
    return defs;
  }
  function renderLegend() {
    const legend = clear($("legend"));
    for (const s of SERIES) {
      legend.append(el("span", {}, svg("svg", { viewBox: "0 0 22 14", "aria-hidden": "true" }, patternDefs(),
        svg("rect", { width: 22, height: 14, fill: "url(#pat-" + s.key + ")" })), s.label));
    }
    legend.append(el("span", {}, svg("svg", { viewBox: "0 0 22 14", "aria-hidden": "true" },
      svg("path", { d: "M1,7 H21", stroke: "#1d1d1b", "stroke-width": 2.5 })), "Offered (line)"));
  }
  function seriesRange(series) {
    let lo = 7 * 60, hi = 19 * 60;
    for (const p of series.today.concat(series.last_week)) {
      if (p.offered > 0) { lo = Math.min(lo, p.minute); hi = Math.max(hi, p.minute + 15); }
    }
    return [Math.floor(lo / 60) * 60, Math.ceil(hi / 60) * 60];
  }
  function drawChart(figure, title, points, range, yMax) {
    figure.querySelector("figcaption").textContent = title;
    // Drawn at the width it is shown, so labels stay legible on a phone.
    const W = Math.round(Math.max(300, Math.min(560, figure.clientWidth || 560))), H = 240, L = 40, R = 8, T = 8, B = 26;
    const slots = (range[1] - range[0]) / 15;
    const x = (minute) => L + ((minute - range[0]) / 15) * ((W - L - R) / slots);
    const y = (v) => H - B - (v / yMax) * (H - T - B);
    const bw = Math.max(1, (W - L - R) / slots - 1);
    const root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": title + ": calls by 15 minutes" }, patternDefs());
    const ticks = niceTicks(yMax);
    for (const t of ticks) {
      root.append(svg("line", { x1: L, x2: W - R, y1: y(t), y2: y(t), stroke: "#e3e3e3" }));
      const label = svg("text", { x: L - 4, y: y(t) + 4, "text-anchor": "end" }); label.textContent = nf.format(t); root.append(label);
    }
    for (let m = range[0]; m <= range[1]; m += 120) {
      const label = svg("text", { x: x(m), y: H - 8, "text-anchor": m === range[1] ? "end" : m === range[0] ? "start" : "middle" });
      label.textContent = String(m / 60).padStart(2, "0") + ":00"; root.append(label);
    }
    const line = [];
    for (const p of points) {
      if (p.minute < range[0] || p.minute >= range[1]) continue;
      let base = 0;
      for (const s of SERIES) {
        const v = p[s.key];
        if (v > 0) {
          root.append(svg("rect", { x: x(p.minute) + 0.5, width: bw, y: y(base + v), height: y(base) - y(base + v), fill: "url(#pat-" + s.key + ")" }));
        }
        base += v;
      }
      line.push((line.length ? "L" : "M") + (x(p.minute) + bw / 2).toFixed(1) + "," + y(p.offered).toFixed(1));
    }
    if (line.length) root.append(svg("path", { d: line.join(" "), fill: "none", stroke: "#1d1d1b", "stroke-width": 2 }));
    if (!points.length) {
      const none = svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }); none.textContent = "No calls"; root.append(none);
    }
    root.append(svg("line", { x1: L, x2: W - R, y1: y(0), y2: y(0), stroke: "#505a5f" }));
    clear(figure.querySelector(".svg")).append(root);
  }
  function niceTicks(max) {
    const step = Math.pow(10, Math.floor(Math.log10(max / 4 || 1)));
    const mult = [1, 2, 5, 10].find((m) => max / (step * m) <= 5) || 10;
    const ticks = [];
    for (let t = 0; t <= max; t += step * mult) ticks.push(t);
    return ticks;
  }
  function renderSeries(series) {
    state.lastSeries = series;
    renderLegend();
    const range = seriesRange(series);
    let yMax = 1;
    for (const p of series.today.concat(series.last_week)) {
      yMax = Math.max(yMax, p.offered, p.answered + p.callback_requested + p.abandoned + p.missed);
    }
    yMax = Math.ceil(yMax * 1.05);
    drawChart($("chart-today"), "Today, " + longDay(series.day), series.today, range, yMax);
    drawChart($("chart-last-week"), "A week before, " + longDay(series.last_week_day), series.last_week, range, yMax);
    const table = el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Time"), el("th", { class: "num" }, "Offered today"),
      ...SERIES.map((s) => el("th", { class: "num" }, s.label + " today")), el("th", { class: "num" }, "Offered a week before"))));
    const lastWeek = new Map(series.last_week.map((p) => [p.minute, p]));
    const body = el("tbody");
    for (const p of series.today) {
      const w = lastWeek.get(p.minute);
      body.append(el("tr", {}, el("td", {}, p.time), el("td", { class: "num" }, count(p.offered)),
        ...SERIES.map((s) => el("td", { class: "num" }, count(p[s.key]))), el("td", { class: "num" }, w ? count(w.offered) : "–")));
    }
    table.append(body);
    clear($("series-table")).append(table);
  }

  function rateBlock(id, label, value, england, cls) {
    const bar = el("div", { class: "bar", "aria-hidden": "true" }, el("div", { class: "fill " + cls }), el("div", { class: "mark" }));
    if (value != null) bar.firstChild.style.width = Math.min(100, value) + "%";
    if (england != null) bar.lastChild.style.left = "calc(" + Math.min(100, england) + "% - 1px)"; else bar.lastChild.hidden = true;
    return el("div", { class: "rate", id },
      el("div", {}, label + ": ", el("span", { class: "figure", "data-value": value == null ? "" : value }, pct(value))),
      el("div", { class: "compare" }, "England: ", el("span", { class: "england", "data-value": england == null ? "" : england }, pct(england)), " (black mark)"),
      bar);
  }
  function renderRates(s) {
    clear($("rates")).append(
      rateBlock("rate-answered", "Answered", s.rates_pct.answered, s.england_rates_pct.answered, "answered"),
      rateBlock("rate-abandoned", "Abandoned", s.rates_pct.abandoned, s.england_rates_pct.abandoned, "abandoned"),
      el("p", { class: "note", id: "rate-handled" }, "Answered or callback requested: " + pct(s.rates_pct.handled) +
        " (England " + pct(s.england_rates_pct.handled) + ")"));
  }
  function renderWaits(s) {
    const w = s.wait_s;
    const item = (id, label, text) => el("div", { id }, el("span", { class: "label" }, label), el("div", { class: "big" }, text));
    clear($("waits")).append(el("div", { class: "waits" },
      item("wait-p50", "Half of answered calls waited", bound(w.p50)),
      item("wait-p90", "9 in 10 answered calls waited", bound(w.p90)),
      item("wait-mean", "Mean wait", secs(w.mean)),
      item("wait-max", "Longest wait", secs(w.max))),
      el("p", { class: "note" }, count(w.answered_with_wait) + " answered calls with a measured wait."));
  }
  function renderDiversions(s, series) {
    const d = s.diverted_111;
    const busiest = series.today.filter((p) => p.diverted_111_core > 0)
      .sort((a, b) => b.diverted_111_core - a.diverted_111_core || a.minute - b.minute).slice(0, 5)
      .map((p) => p.time + " (" + count(p.diverted_111_core) + (p.diverted_111_core === 1 ? " call)" : " calls)"));
    clear($("diversions")).append(
      el("div", { id: "div-core" }, el("span", { class: "big", "data-value": d.core_hours }, count(d.core_hours)), " calls in core hours (08:00–18:30 on working days)"),
      el("p", { class: "note" }, count(d.all) + " diverted to 111 at any time today. " +
        (busiest.length ? "Most in the 15 minutes from " + busiest.join(", ") + "." : "None in core hours today.")));
  }
  function renderAlerts(a) {
    const box = clear($("alerts"));
    if (!a.alerts.length) { box.append(el("p", { id: "no-alerts" }, "No active alerts.")); return; }
    const list = el("ul", { class: "alerts" });
    for (const alert of a.alerts) {
      const since = new Date(alert.started_at_ms).toLocaleString("en-GB", { timeZone: "Europe/London", weekday: "short", hour: "2-digit", minute: "2-digit" });
      list.append(el("li", {}, el("span", { class: "kind" }, alert.kind.replace(/_/g, " ")), " · ",
        (alert.practice_name || alert.practice) + " (" + alert.practice + ") · since " + since,
        el("br"), alert.summary,
        el("br"), el("small", {}, "told " + alert.delivered_to + " recipient(s)" + (alert.failed_for ? ", failed for " + alert.failed_for : ""))));
    }
    box.append(list);
  }
  function renderChildren(c) {
    const block = $("children-block");
    if (!c.child_level) { block.hidden = true; return; }
    block.hidden = false;
    $("children-heading").textContent = CHILD_HEADINGS[c.child_level] + " (select to drill down)";
    const table = el("table", { id: "children-table" }, el("thead", {}, el("tr", {},
      el("th", {}, LEVEL_NAMES[c.child_level]), el("th", { class: "num" }, "Offered (calls)"), el("th", { class: "num" }, "Answered %"),
      el("th", { class: "num" }, "Abandoned %"), el("th", { class: "num" }, "90th pct wait"), el("th", { class: "num" }, "111 in core hours (calls)"))));
    const body = el("tbody");
    const shown = state.allChildren ? c.children : c.children.slice(0, CHILDREN_SHOWN);
    for (const child of shown) {
      body.append(el("tr", { "data-code": child.code },
        el("td", {}, el("a", { href: nodeHash(child.level, child.code) }, child.name), " ", el("small", {}, child.code)),
        el("td", { class: "num" }, count(child.offered)), el("td", { class: "num" }, pct(child.answered_pct)),
        el("td", { class: "num" }, pct(child.abandoned_pct)), el("td", { class: "num" }, child.p90_wait_s == null ? "–" : bound(child.p90_wait_s)),
        el("td", { class: "num" }, count(child.diverted_111_core))));
    }
    table.append(body);
    clear($("children")).append(table);
    if (shown.length < c.children.length) {
      const more = el("button", { type: "button", id: "children-all" }, "Show all " + count(c.children.length) + " " + CHILD_HEADINGS[c.child_level]);
      more.addEventListener("click", () => { state.allChildren = true; renderChildren(c); });
      $("children").append(more);
    }
  }
  function renderPractices(p) {
    $("rank-abandoned").setAttribute("aria-pressed", String(p.rank === "abandoned_pct"));
    $("rank-p90").setAttribute("aria-pressed", String(p.rank === "p90_wait"));
    const box = clear($("practices"));
    if (!p.practices.length) { box.append(el("p", {}, "No practice had calls on this day.")); return; }
    const table = el("table", { id: "practices-table" }, el("thead", {}, el("tr", {}, el("th", {}, "#"), el("th", {}, "Practice"),
      el("th", { class: "num" }, "Offered (calls)"), el("th", { class: "num" }, "Abandoned %"), el("th", { class: "num" }, "Answered %"),
      el("th", { class: "num" }, "90th pct wait"), el("th", { class: "num" }, "Mean wait"))));
    const body = el("tbody");
    p.practices.forEach((row, i) => {
      body.append(el("tr", { "data-code": row.code }, el("td", {}, String(i + 1)),
        el("td", {}, el("a", { href: nodeHash("practice", row.code) }, row.name), " ", el("small", {}, row.code)),
        el("td", { class: "num" }, count(row.offered)), el("td", { class: "num" }, pct(row.abandoned_pct)),
        el("td", { class: "num" }, pct(row.answered_pct)), el("td", { class: "num" }, bound(row.p90_wait_s)),
        el("td", { class: "num" }, secs(row.mean_wait_s))));
    });
    table.append(body);
    box.append(table);
  }
  // A sequential single-hue ramp: readable in every kind of colour vision and in greyscale.
  const RAMP = ["#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b"];
  function renderHeat(h) {
    $("heat-meta").textContent = "Mean calls offered per hour, London time, " + longDay(h.first_day) + " to " + longDay(h.last_day) +
      " (" + h.weeks + " weeks; each cell averages the days with calls at that hour).";
    const cells = new Map(h.cells.map((c) => [c.weekday + ":" + c.hour, c]));
    const max = Math.max(1, ...h.cells.map((c) => c.mean_offered));
    const hours = [];
    for (let hr = 0; hr < 24; hr++) if (h.cells.some((c) => c.hour === hr)) hours.push(hr);
    const box = clear($("heatmap"));
    if (!hours.length) { box.append(el("p", {}, "No calls in these weeks.")); return; }
    const head = el("tr", {}, el("th", {}, el("span", { class: "sr-only" }, "Weekday")), ...hours.map((hr) => el("th", { scope: "col" }, String(hr).padStart(2, "0"))));
    const body = el("tbody");
    WEEKDAYS.forEach((name, i) => {
      const row = el("tr", {}, el("th", { scope: "row" }, name));
      for (const hr of hours) {
        const c = cells.get((i + 1) + ":" + hr);
        const td = el("td", { title: c ? name + " " + String(hr).padStart(2, "0") + ":00: " + c.mean_offered.toFixed(1) + " calls offered on average, " + pct(c.answered_pct) + " answered" : name + " " + hr + ":00: no calls" });
        if (c) {
          const level = Math.min(RAMP.length - 1, Math.floor((c.mean_offered / max) * (RAMP.length - 1) + 0.5));
          td.style.backgroundColor = RAMP[level];
          if (level >= 5) td.className = "dark";
          td.textContent = c.mean_offered >= 10 ? Math.round(c.mean_offered) : c.mean_offered.toFixed(1);
        } else {
          td.textContent = "·";
        }
        row.append(td);
      }
      body.append(row);
    });
    const ramp = el("span", { class: "ramp", "aria-hidden": "true" });
    for (const colour of RAMP) { const s = el("span"); s.style.backgroundColor = colour; ramp.append(s); }
    box.append(el("table", { class: "heat", id: "heat-table" }, el("thead", {}, head), body),
      el("div", { class: "heat-key" }, "fewer calls", ramp, "more calls (up to " + max.toFixed(1) + " an hour)"));
  }

  // ------------------------------------------------------------ wiring
  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", signIn);
    $("logout").addEventListener("click", signOut);
    $("rank-abandoned").addEventListener("click", () => { state.rank = "abandoned_pct"; refresh(false); });
    $("rank-p90").addEventListener("click", () => { state.rank = "p90_wait"; refresh(false); });
    $("day").addEventListener("change", () => {
      const value = $("day").value;
      state.dayPinned = !!value;
      if (value) state.day = value;
      refresh(false);
    });
    // Charts are drawn at their shown width: redraw when that changes (phone turned, window resized).
    let resizeTimer = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => { if (state.lastSeries && !$("dashboard").hidden) renderSeries(state.lastSeries); }, 150);
    });
    window.addEventListener("hashchange", () => { state.allChildren = false; refresh(true); });
    if (sessionStorage.getItem(TOKEN_KEY)) {
      start().catch((err) => { if (err.status === 401) sessionStorage.removeItem(TOKEN_KEY); showLogin(err.status === 401 ? "Sign in again." : err.message); });
    } else {
      showLogin("");
    }
  });
})();
