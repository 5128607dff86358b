// The explorer's page: everything is drawn from the JSON API (see genzoo/serve/app.py).
"use strict";

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  children.forEach((c) => e.append(c));
  return e;
};
const runUrl = (id) => "/api/runs/" + id.split("/").map(encodeURIComponent).join("/");
const state = { run: null, details: null, metrics: [], timer: null, plane: null };

async function api(url, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const r = await fetch(url, init);
  const data = await r.json().catch(() => ({ error: `${r.status} ${r.statusText}` }));
  if (!r.ok) throw new Error(data.error || `${r.status} ${r.statusText}`);
  return data;
}

function showError(err) {
  const box = $("error");
  box.textContent = err ? String(err.message || err) : "";
  box.hidden = !err;
}

const fmt = (v) => typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : (v ?? "");

// -- the run list ---------------------------------------------------------------------------
async function loadRuns() {
  const data = await api("/api/runs");
  $("root").textContent = data.root;
  const body = $("runs").querySelector("tbody");
  body.replaceChildren();
  for (const r of data.runs) {
    const steps = r.error ? "?" : `${r.step}${r.steps ? " / " + r.steps : ""}`;
    const row = el("tr", { "data-id": r.id },
      el("td", { text: r.id }), el("td", { text: r.family || "?" }),
      el("td", { text: r.data || "" }),
      el("td", { text: steps, class: r.training ? "training" : "" }),
      el("td", { text: r.error ? r.error : fmt((r.last || {}).loss) }));
    row.addEventListener("click", () => selectRun(r.id));
    body.append(row);
  }
  $("no-runs").hidden = data.runs.length > 0;
  $("reports").replaceChildren(...data.reports.map((p) =>
    el("li", {}, el("a", { href: p.url, target: "_blank", rel: "noopener", text: p.id }))));
  if (!data.reports.length) $("reports").append(el("li", { text: "none (genzoo compare ... --out DIR)" }));
  const wanted = decodeURIComponent(location.hash.slice(1));
  if (wanted && data.runs.some((r) => r.id === wanted)) selectRun(wanted);
}

// -- one run --------------------------------------------------------------------------------
async function selectRun(id) {
  clearInterval(state.timer);
  showError(null);
  let d;
  try { d = await api(runUrl(id)); } catch (e) { $("run").hidden = false; showError(e); return; }
  Object.assign(state, { run: id, details: d, metrics: d.metrics || [], plane: null });
  history.replaceState(null, "", "#" + encodeURIComponent(id));
  document.querySelectorAll("#runs tbody tr").forEach((tr) =>
    tr.classList.toggle("selected", tr.dataset.id === id));
  $("run").hidden = false;
  $("run-title").textContent = id;
  for (const s of ["sample-result", "interp-view", "plane-view", "sample-message", "interp-message"])
    $(s).replaceChildren();
  $("interp-slider-label").hidden = true;
  $("sample-progress").hidden = true;
  if (d.error) { showError(d.error); }
  renderSummary(d);
  renderMetricChoice();
  drawCurves();
  renderGrids(d.samples || []);
  renderFiles($("showcase"), d.showcase || []);
  $("showcase-section").hidden = !(d.showcase || []).length;
  $("eval-section").hidden = !d.eval;
  $("eval").textContent = d.eval ? JSON.stringify(d.eval, null, 1) : "";
  $("config").textContent = JSON.stringify(d.config || {}, null, 1);
  $("report-link").hidden = !d.report;
  if (d.report) $("report-link").querySelector("a").href = d.report;
  const caps = d.capabilities || {};
  renderOptions(d.options || []);
  $("sample-section").hidden = !caps.sample;
  $("interp-section").hidden = !caps.interpolate;
  $("upload-fields").hidden = !caps.upload;
  $("plane-section").hidden = !caps.plane;
  if (caps.plane) loadPlane();
  if (d.training) state.timer = setInterval(refresh, 3000);
}

function renderSummary(d) {
  const last = Object.entries(d.last || {}).filter(([k]) => k !== "step")
    .map(([k, v]) => `${k} ${fmt(v)}`).join(", ");
  $("run-summary").textContent = `${d.family || "?"} on ${d.data || "?"}: step ${d.step}` +
    (d.steps ? ` of ${d.steps}` : "") + (d.training ? " (training)" : "") + (last ? `; ${last}` : "");
}

async function refresh() {   // a training run: new metrics and sample grids
  const id = state.run;
  let d;
  try { d = await api(runUrl(id) + "?start=" + state.metrics.length); } catch (e) { showError(e); return; }
  if (id !== state.run) return;
  if (d.metrics_count < state.metrics.length) {      // a resumed run rewrote its metrics
    d = await api(runUrl(id)).catch(showError);
    if (!d || id !== state.run) return;
    state.metrics = [];
  }
  state.metrics.push(...(d.metrics || []));
  Object.assign(state.details, { step: d.step, last: d.last, training: d.training });
  renderSummary(state.details);
  renderMetricChoice();
  drawCurves();
  renderGrids(d.samples || [], true);
  if (!d.training) clearInterval(state.timer);
}

// -- curves (inline SVG) --------------------------------------------------------------------
function renderMetricChoice() {
  const keys = new Set();
  for (const m of state.metrics) for (const [k, v] of Object.entries(m))
    if (typeof v === "number" && k !== "step" && k !== "time" && !k.startsWith("val/")) keys.add(k);
  const sel = $("metric"), keep = sel.value;
  sel.replaceChildren(...[...keys].sort().map((k) => el("option", { value: k, text: k })));
  sel.value = keys.has(keep) ? keep : (keys.has("loss") ? "loss" : [...keys][0] || "");
}

function drawCurves() {
  const svg = $("curves"), key = $("metric").value;
  svg.replaceChildren();
  const ns = "http://www.w3.org/2000/svg";
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
  };
  const series = [[key, "#1f77b4"], ["val/" + key, "#d62728"]].map(([k, colour]) =>
    [k, colour, state.metrics.filter((m) => typeof m[k] === "number" && typeof m.step === "number")
      .map((m) => [m.step, m[k]])]).filter((s) => s[2].length);
  if (!series.length) { add("text", { x: 20, y: 30 }, "no metrics yet"); return; }
  const all = series.flatMap((s) => s[2]);
  const [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  const [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  const X = (x) => 60 + 560 * (x - x0) / ((x1 - x0) || 1);
  const Y = (y) => 220 - 200 * (y - y0) / ((y1 - y0) || 1);
  add("line", { x1: 60, y1: 220, x2: 620, y2: 220, stroke: "#999" });
  add("line", { x1: 60, y1: 20, x2: 60, y2: 220, stroke: "#999" });
  add("text", { x: 4, y: 24 }, fmt(y1));
  add("text", { x: 4, y: 220 }, fmt(y0));
  add("text", { x: 60, y: 236 }, "step " + x0);
  add("text", { x: 560, y: 236 }, "step " + x1);
  series.forEach(([k, colour, pts], i) => {
    add("polyline", { fill: "none", stroke: colour, "stroke-width": 1.5,
      points: pts.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(" ") });
    if (pts.length <= 60)    // sparse series (held-out metrics) show their points
      pts.forEach(([x, y]) => add("circle", { cx: X(x).toFixed(1), cy: Y(y).toFixed(1), r: 2.5, fill: colour }));
    add("text", { x: 480, y: 36 + 14 * i, fill: colour }, k);
  });
}

// -- files: images, text, audio, links ------------------------------------------------------
function renderFiles(box, files, caption = true) {
  box.replaceChildren();
  const links = el("div", { class: "downloads" });
  for (const f of files) {
    if (f.kind === "image") {
      box.append(el("figure", {}, el("img", { src: f.url, alt: f.name }),
        caption ? el("figcaption", { text: f.name }) : ""));
    } else if (f.kind === "audio") {
      box.append(el("figure", {}, el("audio", { src: f.url, controls: "" }), el("figcaption", { text: f.name })));
    } else if (f.kind === "text") {
      const pre = el("pre", { "data-name": f.name });
      box.append(el("figure", {}, pre, el("figcaption", { text: f.name })));
      fetch(f.url).then((r) => r.text()).then((t) => { pre.textContent = t; })
        .catch((e) => { pre.textContent = "(could not load: " + e.message + ")"; });
    }
    links.append(el("a", { href: f.url, download: f.name, text: f.name }));
  }
  if (files.some((f) => f.kind !== "image")) box.append(links);
}

function renderGrids(samples, keepPosition = false) {
  const slider = $("grid-step"), atEnd = +slider.value === +slider.max;
  state.samples = samples;
  $("grids-section").hidden = !samples.length;
  if (!samples.length) return;
  slider.max = samples.length - 1;
  if (!keepPosition || atEnd) slider.value = samples.length - 1;
  showGrid();
}

function showGrid() {
  const s = state.samples[+$("grid-step").value];
  $("grid-label").textContent = s ? s.step : "";
  if (s) renderFiles($("grid-view"), s.files, false);
}

// -- jobs -----------------------------------------------------------------------------------
async function runJob(url, body, message, progress) {
  message.textContent = "queued";
  if (progress) { progress.hidden = false; progress.value = 0; }
  let job = await api(url, body);
  while (job.state === "queued" || job.state === "running") {
    job = await api(job.url + "?wait=1");
    message.textContent = job.message;
    if (progress) progress.value = job.progress;
  }
  if (progress) progress.hidden = true;
  if (job.state === "error") throw new Error(job.error);
  message.textContent = "";
  return job;
}

// -- the sampling form, from the family's declared options ----------------------------------
function renderOptions(options) {
  const box = $("option-fields");
  box.replaceChildren();
  for (const o of options) {
    let input;
    if (o.choices) {
      input = el("select", { name: o.name });
      if (o.default === null) input.append(el("option", { value: "", text: "(default)" }));
      for (const c of o.choices) input.append(el("option", { value: String(c), text: String(c) }));
      if (o.default !== null) input.value = String(o.default);
    } else if (o.type === "bool") {
      input = el("input", { type: "checkbox", name: o.name });
      input.checked = !!o.default;
    } else if (o.kind === "prompt") {
      input = el("textarea", { name: o.name, placeholder: o.default ?? "" });
    } else {
      const number = o.type === "int" || o.type === "float";
      input = el("input", { type: number ? "number" : "text", name: o.name,
        placeholder: o.default === null ? "default" : String(o.default) });
      if (number) input.step = o.type === "int" ? "1" : "any";
      if (o.default !== null) input.value = String(o.default);
    }
    input.dataset.type = o.type;
    box.append(el("label", { title: o.help || "" }, o.name + " ", input));
  }
}

async function sample(ev) {
  ev.preventDefault();
  const form = $("sample-form"), options = {};
  for (const input of $("option-fields").querySelectorAll("[name]")) {
    if (input.type === "checkbox") options[input.name] = input.checked;
    else if (input.value !== "") options[input.name] = input.value;
  }
  showError(null);
  $("sample-result").replaceChildren();
  $("sample-button").disabled = true;
  try {
    const job = await runJob(runUrl(state.run) + "/sample",
      { n: form.n.value, seed: form.seed.value, options }, $("sample-message"), $("sample-progress"));
    renderFiles($("sample-result"), job.files);
  } catch (e) { showError(e); $("sample-message").textContent = ""; }
  $("sample-button").disabled = false;
}

// -- wiring ---------------------------------------------------------------------------------
$("metric").addEventListener("change", drawCurves);
$("grid-step").addEventListener("input", showGrid);
$("sample-form").addEventListener("submit", sample);
window.addEventListener("hashchange", () => {
  const id = decodeURIComponent(location.hash.slice(1));
  if (id && id !== state.run) selectRun(id);
});
// after every script of the page has run (latent.js adds the latent tools)
document.addEventListener("DOMContentLoaded", () =>
  loadRuns().catch((e) => { $("run").hidden = false; showError(e); }));
