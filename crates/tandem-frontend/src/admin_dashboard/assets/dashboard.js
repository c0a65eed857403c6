// The administrator's dashboard: reads /admin/api/overview and /admin/api/metrics every few
// seconds and draws tables and SVG charts with DOM calls only (no markup from data, no library).
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const REFRESH_MS = 5000;
let csrf = "";

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function svgEl(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

function time(unix) {
  if (unix === null || unix === undefined || unix === "") return "";
  const d = typeof unix === "number" ? new Date(unix * 1000) : new Date(unix);
  return isNaN(d.getTime()) ? String(unix) : d.toISOString().replace(".000", "");
}

function fillTable(id, rows, cells) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren();
  for (const r of rows || []) {
    const tr = el("tr");
    for (const c of cells(r)) {
      const td = el("td", c.cls ? { class: c.cls } : {}, c.text);
      tr.appendChild(td);
    }
    if (r.status) tr.dataset.status = r.status;
    body.appendChild(tr);
  }
}

function renderOverview(o) {
  csrf = o.csrf;
  document.getElementById("who").textContent = `Signed in as ${o.user}`;
  const note = document.getElementById("note");
  note.hidden = !o.note;
  note.textContent = o.note || "";
  const steps = o.steps || [];
  const passing = steps.filter((s) => s.status !== "fail").length;
  document.getElementById("steps-summary").textContent = `(${passing} of ${steps.length} passing)`;
  document.getElementById("steps").dataset.ready = "true";
  fillTable("steps", steps, (s) => [
    { text: s.step },
    { text: s.name },
    { text: s.status, cls: `status ${s.status}` },
    { text: s.reason, cls: "reason" },
  ]);
  fillTable("certificates", o.certificates, (c) => [
    { text: c.use }, { text: c.slot }, { text: c.thumbprint }, { text: c.subject },
    { text: time(c.not_after) }, { text: time(c.effective_date) },
  ]);
  fillTable("partners", o.partners, (p) => [
    { text: p.role }, { text: p.name }, { text: p.application_identifier }, { text: p.enabled ? "yes" : "no" },
    { text: p.trust_level }, { text: p.metadata_url || "" },
  ]);
  fillTable("errors", o.errors, (e) => [
    { text: time(e.time) }, { text: e.level }, { text: e.target }, { text: e.message, cls: "reason" },
  ]);
  const labels = {
    registrations: "Registered endpoints",
    presence_subscriptions: "SIP presence subscriptions",
    web_sessions: "UC web API sessions",
    web_event_streams: "Open event streams",
    web_watched_presentities: "Presentities watched from the web",
    click_to_call_calls: "Click-to-call calls",
    dashboard_sessions: "Dashboard sessions",
  };
  const dl = document.getElementById("counts");
  dl.replaceChildren();
  for (const [k, label] of Object.entries(labels)) {
    const d = el("div", { "data-count": k });
    d.appendChild(el("dt", {}, label));
    d.appendChild(el("dd", {}, (o.counts || {})[k] ?? 0));
    dl.appendChild(d);
  }
}

// One line chart: the series over time, its axis from zero to the largest value.
function chart(title, unit, samples, pick) {
  const W = 360, H = 120, PAD = 24;
  const fig = el("figure", { "data-chart": title });
  const last = samples.length ? pick(samples[samples.length - 1]) : 0;
  fig.appendChild(el("figcaption", {}, `${title}: ${Number(last).toFixed(unit === "ms" ? 1 : 2)} ${unit}`));
  const svg = svgEl("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${title} over the last hour` });
  svg.appendChild(svgEl("line", { class: "axis", x1: PAD, y1: H - PAD, x2: W - 4, y2: H - PAD }));
  svg.appendChild(svgEl("line", { class: "axis", x1: PAD, y1: 4, x2: PAD, y2: H - PAD }));
  const values = samples.map(pick);
  const max = Math.max(1e-9, ...values);
  const top = svgEl("text", { x: 2, y: 12 });
  top.textContent = max >= 100 ? max.toFixed(0) : max.toPrecision(2);
  svg.appendChild(top);
  const zero = svgEl("text", { x: 2, y: H - PAD });
  zero.textContent = "0";
  svg.appendChild(zero);
  if (values.length > 1) {
    const t0 = samples[0].time, t1 = samples[samples.length - 1].time || t0 + 1;
    const x = (t) => PAD + ((t - t0) / Math.max(1, t1 - t0)) * (W - PAD - 6);
    const y = (v) => H - PAD - (v / max) * (H - PAD - 8);
    const pts = samples.map((s, i) => `${x(s.time).toFixed(1)},${y(values[i]).toFixed(1)}`);
    svg.appendChild(svgEl("polygon", { class: "area", points: `${x(t0)},${H - PAD} ${pts.join(" ")} ${x(t1)},${H - PAD}` }));
    svg.appendChild(svgEl("polyline", { class: "line", points: pts.join(" ") }));
  }
  fig.appendChild(svg);
  return fig;
}

function renderMetrics(m) {
  const s = m.samples || [];
  const box = document.getElementById("charts");
  box.replaceChildren(
    chart("Registrations", "endpoints", s, (x) => x.registrations),
    chart("Requests per second", "req/s", s, (x) => x.requests_per_second),
    chart("EWS latency", "ms", s, (x) => x.ews_latency_ms),
    chart("Token validations", "per s", s, (x) => x.token_validations_per_second),
  );
  box.dataset.samples = String(s.length);
}

async function load() {
  for (const [path, render] of [["/admin/api/overview", renderOverview], ["/admin/api/metrics", renderMetrics]]) {
    const r = await fetch(path, { credentials: "same-origin", cache: "no-store" });
    if (r.status === 401) {
      location.assign("/admin/sign-in");
      return;
    }
    if (r.ok) render(await r.json());
  }
}

async function signOut() {
  await fetch("/admin/sign-out", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf } });
  location.assign("/admin/sign-in");
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("sign-out").addEventListener("click", signOut);
  load();
  setInterval(load, REFRESH_MS);
});
