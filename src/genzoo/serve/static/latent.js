// The explorer's latent tools (families with a decoder): interpolation between two seeds or two
// uploaded images with a slider over the frames, and the 2-d latent plane, decoded where clicked.
// Uses the helpers of app.js, loaded before it.
"use strict";

// -- interpolation --------------------------------------------------------------------------
async function interpolate(body) {
  showError(null);
  $("interp-view").replaceChildren();
  $("interp-slider-label").hidden = true;
  try {
    const job = await runJob(runUrl(state.run) + "/interpolate", body, $("interp-message"));
    const frames = {};
    for (const f of job.files) {
      const m = /^frame_(\d+)\./.exec(f.name);
      if (m) (frames[+m[1]] = frames[+m[1]] || []).push(f);
    }
    state.frames = Object.keys(frames).sort((a, b) => a - b).map((k) => frames[k]);
    const slider = $("interp-slider");
    slider.max = state.frames.length - 1;
    slider.value = 0;
    $("interp-slider-label").hidden = false;
    showFrame();
  } catch (e) { showError(e); $("interp-message").textContent = ""; }
}

function showFrame() {
  const i = +$("interp-slider").value, n = state.frames.length;
  $("interp-t").textContent = (n > 1 ? i / (n - 1) : 0).toFixed(2);
  renderFiles($("interp-view"), state.frames[i] || [], false);
}

const readImage = (input) => new Promise((resolve, reject) => {
  const file = input.files[0];
  if (!file) { reject(new Error("choose two images first")); return; }
  const reader = new FileReader();
  reader.onload = () => resolve(reader.result);
  reader.onerror = () => reject(new Error("could not read " + file.name));
  reader.readAsDataURL(file);
});

// -- the 2-d latent plane -------------------------------------------------------------------
async function loadPlane() {
  const canvas = $("plane"), id = state.run;
  canvas.hidden = true;
  $("plane-note").textContent = "finding the codes...";
  try {
    const job = await runJob(runUrl(id) + "/plane", {}, $("plane-note"));
    if (id !== state.run) return;
    state.plane = job.data;
    if (job.data.dim.length !== 1 || job.data.dim[0] !== 2) {
      $("plane-note").textContent = `The latent is ${job.data.dim.join("x")}-d; the plane needs a 2-d latent.`;
      return;
    }
    $("plane-note").textContent = "Click a point of the plane to decode it (dots: codes of samples).";
    canvas.hidden = false;
    drawPlane();
  } catch (e) { $("plane-note").textContent = e.message; }
}

function drawPlane(mark) {
  const c = $("plane"), ctx = c.getContext("2d"), p = state.plane;
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, c.width, c.height);
  ctx.fillStyle = "rgba(31,119,180,0.5)";
  for (const [a, b] of p.points) {
    const x = (a - p.lo[0]) / (p.hi[0] - p.lo[0]) * c.width;
    const y = (1 - (b - p.lo[1]) / (p.hi[1] - p.lo[1])) * c.height;
    ctx.fillRect(x - 1.5, y - 1.5, 3, 3);
  }
  if (mark) { ctx.strokeStyle = "#d62728"; ctx.strokeRect(mark[0] - 4, mark[1] - 4, 8, 8); }
}

async function clickPlane(ev) {
  const c = $("plane"), p = state.plane, r = c.getBoundingClientRect();
  const px = (ev.clientX - r.left) * c.width / r.width, py = (ev.clientY - r.top) * c.height / r.height;
  const z = [p.lo[0] + px / c.width * (p.hi[0] - p.lo[0]), p.hi[1] - py / c.height * (p.hi[1] - p.lo[1])];
  drawPlane([px, py]);
  showError(null);
  try {
    const job = await runJob(runUrl(state.run) + "/decode", { z }, $("plane-note"));
    renderFiles($("plane-view"), job.files, false);
    $("plane-view").prepend(el("p", { text: `z = (${z.map((v) => v.toFixed(2)).join(", ")})` }));
    $("plane-note").textContent = "Click a point of the plane to decode it (dots: codes of samples).";
  } catch (e) { showError(e); }
}

// -- wiring ---------------------------------------------------------------------------------
$("interp-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const f = $("interp-form");
  interpolate({ seeds: [f.a.value, f.b.value], steps: f.steps.value });
});
$("interp-images").addEventListener("click", async () => {
  try {
    const images = [await readImage($("image-a")), await readImage($("image-b"))];
    interpolate({ images, steps: $("interp-form").steps.value });
  } catch (e) { showError(e); }
});
$("interp-slider").addEventListener("input", showFrame);
$("plane").addEventListener("click", clickPlane);
