// Create, in the browser: ask a model for a class, turn the guidance knob, watch the 4x4 grid
// appear. The same page serves the app's Create page (a Streamlit component, index.html) and
// the static site (site.html). The drawing runs in worker.js; this module is the page.

import { SAMPLERS } from "./sampler.js";

export const DEFAULTS = {
  what: "anything", guidance: 3, steps: 20, sampler: "dpmpp_2m", seed: 0,
  steps_min: 5, steps_max: 100, guidance_max: 10, grid_n: 16, sweep: [0, 1, 2, 4, 8],
  sweep_n: 4, seed_max: 2147483647, timeout_s: 45, workers: 0, // 0: one per core, up to 4
};
const ANYTHING = "anything";

/** Workers to draw with: one per core the browser reports, up to 4. */
export function defaultWorkers() {
  const cores = (typeof navigator !== "undefined" && navigator.hardwareConcurrency) || 1;
  return Math.max(1, Math.min(4, cores));
}

// WebAssembly with SIMD (the onnxruntime build needs it): a tiny module that uses a SIMD op
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0,
  10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);

/** Why this browser cannot draw here ("" when it can). */
export function unsupportedReason() {
  if (typeof WebAssembly !== "object" || typeof WebAssembly.instantiate !== "function") {
    return "this browser has no WebAssembly";
  }
  if (typeof Worker !== "function") return "this browser has no Web Workers";
  try {
    if (!WebAssembly.validate(SIMD_PROBE)) return "this browser's WebAssembly lacks SIMD";
  } catch (e) {
    return "this browser's WebAssembly lacks SIMD";
  }
  return "";
}

// ------------------------------------------------------------------ small helpers

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const kid of kids) if (kid != null) e.append(kid);
  return e;
}

const clampNum = (v, lo, hi, dflt) => {
  const n = Number(v);
  return Number.isFinite(n) ? Math.min(hi, Math.max(lo, n)) : dflt;
};

/** Which class a typed request names (models/labels.resolve_label): its index, -1 for
 * anything, null for no such class. */
export function resolveLabel(model, text) {
  const want = String(text ?? "").trim().toLowerCase().split(/\s+/).join(" ");
  if (!want || want === ANYTHING || want === "any") return -1;
  const names = model.classes.map((c) => c.toLowerCase());
  let i = names.indexOf(want);
  if (i >= 0) return i;
  i = (model.class_words || []).map((c) => c.toLowerCase()).indexOf(want);
  if (i >= 0) return i;
  const alias = (model.aliases || {})[want];
  if (alias) {
    i = names.indexOf(alias.toLowerCase());
    if (i >= 0) return i;
  }
  if (/^\d+$/.test(want) && Number(want) < names.length) return Number(want);
  return null;
}

/** "a 7", "a sneaker", "an ankle boot", "a T-shirt/top" (app/create.what_text). */
export function aName(choice) {
  const two = choice.slice(0, 2); // Python's isupper(): a cased letter, none lower case
  const name = two === two.toUpperCase() && two !== two.toLowerCase() ? choice : choice.toLowerCase();
  return `${"aeiou8".includes(name[0].toLowerCase()) ? "an" : "a"} ${name}`;
}

function guidanceWords(w, what) {
  if (w === 0) return `0: the label is ignored; the model draws anything.`;
  if (w < 1) return `${w}: a weak pull towards ${what}.`;
  if (w === 1) return `1: the model simply follows the label, no extra push.`;
  if (w <= 4) return `${w}: an extra push towards the label: clearer pictures, a little less variety.`;
  return `${w}: a very strong push: near-identical, over-drawn pictures.`;
}

/** Paint pictures (Float32Arrays of C x side x side, [-1, 1]; C = 1 gray or 3 colour) into a
 * canvas as a grid of `cols` columns. */
function paintGrid(canvas, pictures, side, cols, pad = 2, channels = 1) {
  const rows = Math.ceil(pictures.length / cols);
  const W = cols * (side + pad) + pad, H = rows * (side + pad) + pad;
  if (canvas.width !== W || canvas.height !== H) { canvas.width = W; canvas.height = H; }
  const g = canvas.getContext("2d");
  const img = g.createImageData(W, H);
  img.data.fill(255);
  const plane = side * side;
  const level = (v) => Math.round((Math.min(1, Math.max(-1, v)) + 1) * 127.5);
  pictures.forEach((p, k) => {
    const ox = pad + (k % cols) * (side + pad), oy = pad + Math.floor(k / cols) * (side + pad);
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        const o = ((oy + y) * W + ox + x) * 4, j = y * side + x;
        for (let c = 0; c < 3; c++) img.data[o + c] = level(p[(channels === 3 ? c * plane : 0) + j]);
      }
    }
  });
  g.putImageData(img, 0, 0);
}

function split(flat, count, size) {
  const out = [];
  for (let k = 0; k < count; k++) out.push(flat.subarray(k * size, (k + 1) * size));
  return out;
}

// ------------------------------------------------------------------ the page

/**
 * Mount Create into `root`.
 *  models: [{name, title, base: "models/<name>/"}]; settings: DEFAULTS' keys (initial values);
 *  report(status): told {status: "ready"|"unsupported"|"error"|"timeout", message, ...}
 *   once per model loaded (the Streamlit page falls back to the server when not "ready").
 * Returns {update(settings, models)} for a host that changes what it asked for.
 */
export function mountCreate(root, { models, settings = {}, report = () => {}, mode = "site" }) {
  const S = { ...DEFAULTS, ...settings };
  const state = {
    models, model: null, json: null, workers: [], ready: false, label: -1, runId: 0,
    active: 0, frames: [], result: null, sweep: [], hasRun: false, stopping: false, t0: 0,
    reported: null, loadToken: 0, run: null,
  };
  root.classList.add("dl-create");
  root.innerHTML = "";

  // ---- controls
  const worldBox = el("div", { class: "dl-worlds", role: "group", "aria-label": "World" });
  const classBox = el("div", { class: "dl-classes", role: "group", "aria-label": "What to draw" });
  const typed = el("input", { type: "text", class: "dl-typed", placeholder: "or type a name…",
    "aria-label": "Type what to draw" });
  const typedNote = el("span", { class: "dl-note" });
  const guidance = el("input", { type: "range", min: 0, max: S.guidance_max, step: 0.5,
    value: S.guidance, "aria-label": "Guidance" });
  const guidanceOut = el("b", { class: "dl-gval" });
  const guidanceText = el("div", { class: "dl-note" });
  const steps = el("input", { type: "range", min: S.steps_min, max: S.steps_max, step: 1,
    value: S.steps, "aria-label": "Steps" });
  const stepsOut = el("b");
  const sampler = el("select", { "aria-label": "Sampler" });
  for (const [k, v] of Object.entries(SAMPLERS)) sampler.append(el("option", { value: k, text: v.label }));
  sampler.value = SAMPLERS[S.sampler] ? S.sampler : DEFAULTS.sampler;
  const seed = el("input", { type: "number", min: 0, max: S.seed_max, step: 1, value: S.seed,
    "aria-label": "Seed" });
  const createBtn = el("button", { class: "dl-primary", text: "▶ Create", disabled: "" });
  const stopBtn = el("button", { text: "■ Stop", disabled: "" });
  const status = el("div", { class: "dl-status", role: "status", "aria-live": "polite",
    text: "Loading the model into this browser…" });

  // ---- live view and results
  const nowCanvas = el("canvas", { class: "dl-grid", "aria-label": "the pictures now" });
  const guessCanvas = el("canvas", { class: "dl-grid", "aria-label": "the model's guess" });
  const live = el("div", { class: "dl-row dl-live" },
    el("figure", {}, nowCanvas, el("figcaption", { text: "the 16 pictures now (still noisy)" })),
    el("figure", {}, guessCanvas, el("figcaption", { text: "the model's guess of how they will end" })));
  const finalCanvas = el("canvas", { class: "dl-grid dl-final", "aria-label": "what it drew",
    title: "click a picture to open it up" });
  const finalCaption = el("figcaption");
  const download = el("button", { text: "Grid (PNG)" });
  const pick = el("input", { type: "number", min: 1, max: S.grid_n, value: 1, "aria-label": "Which picture" });
  const at = el("input", { type: "range", min: 1, max: 1, value: 1, "aria-label": "At step" });
  const atOut = el("b");
  const openCanvases = ["guess when told the label", "guess when told nothing", "guided mix"]
    .map((cap) => [el("canvas", { class: "dl-one", "aria-label": cap }), el("figcaption", { text: cap })]);
  const openNote = el("div", { class: "dl-note" });
  const openRow = el("div", { class: "dl-row" },
    ...openCanvases.map(([c, cap]) => el("figure", {}, c, cap)));
  const sweepCanvas = el("canvas", { class: "dl-sweep", "aria-label": "the guidance sweep" });
  const sweepBox = el("section", { class: "dl-sweepbox", hidden: "" },
    el("h3", { text: "The guidance knob, turned" }), sweepCanvas,
    el("div", { class: "dl-note", text: "Same starting noise, one column per guidance strength: at 0 the label is ignored, higher values follow it more strictly and the pictures look more alike." }));
  const results = el("section", { class: "dl-results", hidden: "" },
    el("h3", { text: "What it drew" }),
    el("figure", {}, finalCanvas, finalCaption), download,
    el("h3", { text: "One picture, opened up" }),
    el("div", { class: "dl-controls" },
      el("label", {}, "Which picture (1 = top left) ", pick),
      el("label", {}, "At step ", at, " ", atOut)),
    openRow, openNote, sweepBox);

  root.append(
    worldBox,
    el("div", { class: "dl-label", text: "What should it draw?" }), classBox,
    el("div", { class: "dl-controls" }, typed, typedNote),
    el("div", { class: "dl-controls" },
      el("label", { class: "dl-wide" }, "Guidance: how hard to push towards the label ", guidance, " ", guidanceOut)),
    guidanceText,
    el("div", { class: "dl-controls" },
      el("label", {}, "Steps ", steps, " ", stepsOut),
      el("label", {}, "Sampler ", sampler),
      el("label", {}, "Seed ", seed)),
    el("div", { class: "dl-controls" }, createBtn, stopBtn),
    status, live, results,
    el("details", { class: "dl-help" }, el("summary", { text: "About drawing on this computer" }),
      el("p", { text: "Your browser runs the model itself (onnxruntime-web, WebAssembly, one thread): the server only sent the files, once. Each step asks the network twice per picture, once told the label and once told nothing, and mixes the two guesses: told nothing + guidance × (told − nothing)." }),
      el("p", { text: "Seeds: the browser draws its starting noise with its own random generator, so a seed here gives different pictures from the same seed on the server or the command line. Given the same starting noise, the browser and the server draw the same pictures (they agree to 0.001)." })));

  // in the app, nothing but the status line shows until the model is ready here: the page
  // shows its server controls meanwhile, and falls back to them if this browser cannot draw
  if (mode === "component") root.classList.add("dl-waiting");

  // ---- the class pictures
  function renderClasses() {
    classBox.innerHTML = "";
    const m = state.json;
    const tiles = [ANYTHING, ...m.classes];
    const strip = m.examples ? new Image() : null;
    tiles.forEach((name, i) => {
      const label = i - 1;
      const btn = el("button", { class: "dl-class", "data-label": String(label),
        "aria-label": label < 0 ? "anything" : name, title: label < 0 ? "anything (surprise me)" : name });
      if (label >= 0 && strip) {
        const c = el("canvas", { width: m.size, height: m.size });
        btn.append(c);
        strip.addEventListener("load", () => c.getContext("2d").drawImage(strip,
          label * m.examples.tile, 0, m.examples.tile, m.examples.tile, 0, 0, m.size, m.size));
      } else {
        btn.append(el("span", { class: "dl-any", text: label < 0 ? "?" : name.slice(0, 2) }));
      }
      btn.append(el("span", { class: "dl-cap", text: label < 0 ? "anything" : name }));
      btn.addEventListener("click", () => { choose(label); start(); });
      classBox.append(btn);
    });
    if (strip) strip.src = m.examples.png;
    markChosen();
  }

  function markChosen() {
    for (const b of classBox.querySelectorAll(".dl-class")) {
      b.classList.toggle("dl-on", Number(b.dataset.label) === state.label);
      b.setAttribute("aria-pressed", Number(b.dataset.label) === state.label ? "true" : "false");
    }
    const w = Number(guidance.value);
    guidanceOut.textContent = w.toFixed(1);
    stepsOut.textContent = steps.value;
    guidance.disabled = state.label < 0;
    guidanceText.textContent = state.label < 0
      ? "Guidance needs a label: pick a class to use it."
      : guidanceWords(w, whatText());
  }

  function whatText() {
    return state.label < 0 ? "anything" : aName(state.json.classes[state.label]);
  }

  function choose(label) {
    state.label = label;
    typedNote.textContent = "";
    markChosen();
  }

  typed.addEventListener("keydown", (e) => {
    if (e.key !== "Enter" || !state.json) return;
    const label = resolveLabel(state.json, typed.value);
    if (label === null) {
      typedNote.textContent = `No class “${typed.value}”: try ${state.json.classes.slice(0, 4).join(", ")}…`;
      return;
    }
    choose(label);
    start();
  });

  // ---- worlds
  function renderWorlds() {
    worldBox.innerHTML = "";
    worldBox.hidden = state.models.length < 2;
    for (const m of state.models) {
      const b = el("button", { class: "dl-world", text: m.title || m.name, "data-model": m.name });
      b.classList.toggle("dl-on", state.model && m.name === state.model.name);
      b.addEventListener("click", () => loadModel(m.name));
      worldBox.append(b);
    }
  }

  // ---- the worker
  function tell(result) {
    const key = `${result.status}:${state.model?.name}`;
    if (state.reported === key) return;
    state.reported = key;
    report({ ...result, model: state.model?.name });
  }

  function fail(kind, message) {
    state.ready = false;
    createBtn.disabled = true;
    stopBtn.disabled = true;
    status.textContent = mode === "site"
      ? `This browser cannot draw here: ${message}.`
      : `Cannot draw on this computer: ${message}.`;
    status.classList.add("dl-bad");
    tell({ status: kind, message });
  }

  async function loadModel(name, what) {
    const why = unsupportedReason();
    const m = state.models.find((x) => x.name === name) || state.models[0];
    state.model = m;
    renderWorlds();
    if (why) return fail("unsupported", why);
    const token = ++state.loadToken;
    state.ready = false;
    createBtn.disabled = true;
    status.classList.remove("dl-bad");
    status.textContent = `Loading ${m.title || m.name} into this browser…`;
    const timer = setTimeout(() => {
      if (token === state.loadToken && !state.ready) {
        fail("timeout", `the model did not load within ${S.timeout_s} s`);
        stopWorkers();
      }
    }, S.timeout_s * 1000);
    try {
      const r = await fetch(new URL(m.base + "model.json", location.href));
      if (!r.ok) throw new Error(`model.json: HTTP ${r.status}`);
      state.json = await r.json();
    } catch (e) {
      clearTimeout(timer);
      return fail("error", `the model's description could not be read (${e.message || e})`);
    }
    if (token !== state.loadToken) return;
    // a world's classes are its own: a new world starts from what the host asked, or what
    // the world is first asked for (models/index.json), or anything
    const ask = what ?? m.what;
    state.label = (ask != null ? resolveLabel(state.json, ask) : -1) ?? -1;
    renderClasses();
    clearResults();
    stopWorkers();
    // one worker per core (up to 4), each with its own single-threaded WASM runtime: no
    // cross-origin isolation needed, and each draws its share of the grid
    const count = Math.max(1, Math.min(S.grid_n, Math.round(S.workers || defaultWorkers())));
    const pool = [];
    let ready = 0, ms = 0, ort = "";
    const failLoad = (message) => {
      clearTimeout(timer);
      if (token === state.loadToken && !state.ready) {
        stopWorkers();
        fail("error", message);
      }
    };
    for (let k = 0; k < count; k++) {
      let worker;
      try {
        worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
      } catch (e) {
        clearTimeout(timer);
        stopWorkers();
        return fail("unsupported", `this browser cannot start a module Web Worker (${e.message || e})`);
      }
      pool.push(worker);
      worker.onerror = (e) => failLoad(`the drawing worker failed (${e.message || "could not load"})`);
      worker.onmessage = (e) => {
        if (token !== state.loadToken) return;
        const msg = e.data;
        if (msg.type === "ready") {
          ready += 1;
          ms = Math.max(ms, msg.msPerCall);
          ort = msg.ort;
          if (ready < count) return;
          clearTimeout(timer);
          state.ready = true;
          root.classList.remove("dl-waiting");
          state.msPerCall = ms;
          createBtn.disabled = false;
          const perRun = (ms * callsPerRun()) / count / 1000;
          status.textContent = `Ready: drawing on this computer (about ${perRun.toFixed(1)} s for 16 pictures with these settings).`;
          root.dataset.workers = String(count);
          tell({ status: "ready", message: "", ms_per_call: ms, ort, workers: count });
        } else if (msg.type === "error" && !msg.id) {
          failLoad(msg.message);
        } else {
          onRunMessage(msg);
        }
      };
    }
    state.workers = pool;
    for (const worker of pool) worker.postMessage({ type: "load", model: m.base, json: state.json });
  }

  function stopWorkers() {
    for (const w of state.workers) w.terminate();
    state.workers = [];
  }

  function callsPerRun() {
    const n = Number(steps.value), spec = SAMPLERS[sampler.value];
    const callsPerPicture = spec.calls * (n - 1) + 1;
    return state.label < 0 ? (callsPerPicture * S.grid_n) / 2 : callsPerPicture * S.grid_n;
  }

  // ---- a run
  function clearResults() {
    state.frames = [];
    state.result = null;
    state.sweep = [];
    results.hidden = true;
    sweepBox.hidden = true;
  }

  function start() {
    if (!state.ready) return;
    const id = ++state.runId;
    state.active = id;
    state.hasRun = true;
    state.stopping = false;
    clearResults();
    state.t0 = performance.now();
    const n = Number(steps.value), N = S.grid_n, size = pictureSize();
    state.settings = { label: state.label, guidance: Number(guidance.value), steps: n,
      sampler: sampler.value, seed: clampNum(seed.value, 0, S.seed_max, 0), what: whatText() };
    // each worker draws a contiguous part of the grid and some of the sweep's strengths
    const W = state.workers.length;
    state.run = { parts: W, done: 0, ended: 0, calls: 0, ms: 0, final: new Float32Array(N * size),
      steps: [], sweepDone: 0, cancelled: 0 };
    state.workers.forEach((worker, k) => {
      const first = Math.floor((k * N) / W), last = Math.floor(((k + 1) * N) / W);
      worker.postMessage({ type: "run", id, label: state.label, guidance: state.settings.guidance,
        steps: n, sampler: sampler.value, seed: state.settings.seed, first, count: last - first,
        eta: 0, sweep: S.sweep.filter((_, j) => j % W === k), sweepN: S.sweep_n });
    });
    createBtn.textContent = "▶ Create again";
    stopBtn.disabled = false;
    status.classList.remove("dl-bad");
    status.textContent = `Drawing on this computer: ${whatText()}, step 0 of ${n}…`;
    root.dataset.run = String(id);
    root.dataset.frames = "0";
    root.dataset.state = "running";
  }

  function pictureSize() {
    return state.json.size * state.json.size * state.json.channels;
  }

  function stop() {
    if (!state.active) return;
    state.stopping = true;
    for (const w of state.workers) w.postMessage({ type: "cancel" });
  }

  /** A step's frame, put together from every worker's part; complete when all have sent it. */
  function framePart(msg) {
    const size = pictureSize(), N = S.grid_n, run = state.run;
    let f = run.steps[msg.i];
    if (!f) {
      f = run.steps[msg.i] = { i: msg.i, n: msg.n, sigma: msg.sigma, got: 0,
        x: new Float32Array(N * size), x0: new Float32Array(N * size),
        cond: msg.cond ? new Float32Array(N * size) : null,
        uncond: msg.uncond ? new Float32Array(N * size) : null };
    }
    const at = msg.first * size;
    f.x.set(msg.x, at);
    f.x0.set(msg.x0, at);
    if (f.cond && msg.cond) { f.cond.set(msg.cond, at); f.uncond.set(msg.uncond, at); }
    f.got += 1;
    return f.got === run.parts ? f : null;
  }

  function onRunMessage(msg) {
    if (msg.id !== state.active) return; // a run that was replaced
    const side = state.json.size, size = pictureSize(), run = state.run;
    if (msg.type === "frame") {
      const f = framePart(msg);
      if (!f) return;
      state.frames.push(f);
      paintGrid(nowCanvas, split(f.x, S.grid_n, size), side, 4, 2, state.json.channels);
      paintGrid(guessCanvas, split(f.x0, S.grid_n, size), side, 4, 2, state.json.channels);
      const per = (performance.now() - state.t0) / (f.i + 1);
      status.textContent = `Drawing on this computer: ${state.settings.what}, step ${f.i + 1} of ${f.n} (${per.toFixed(0)} ms per step)`;
      root.dataset.frames = String(state.frames.length);
      if (state.frames.length === 1) root.dataset.firstFrameMs = String(performance.now() - state.t0);
    } else if (msg.type === "done") {
      run.final.set(msg.final, msg.first * size);
      run.calls += msg.calls;
      run.done += 1;
      if (run.done === run.parts) finish(run.final, false, performance.now() - state.t0, run.calls);
    } else if (msg.type === "cancelled") {
      run.cancelled += 1;
      if (run.cancelled + run.sweepDone < run.parts) return; // the others have not stopped yet
      if (state.stopping && !state.result && state.frames.length) {
        const last = state.frames[state.frames.length - 1];
        finish(last.x0, true, performance.now() - state.t0, null);
      } else if (!state.result) {
        status.textContent = state.stopping ? "Stopped before the first step: nothing was drawn." : status.textContent;
        root.dataset.state = "stopped";
      } else {
        root.dataset.state = "done";
      }
      state.active = 0;
      stopBtn.disabled = true;
    } else if (msg.type === "sweep") {
      state.sweep.push(msg);
      state.sweep.sort((a, b) => S.sweep.indexOf(a.w) - S.sweep.indexOf(b.w));
      paintSweep();
    } else if (msg.type === "sweepDone") {
      run.sweepDone += 1;
      if (run.sweepDone < run.parts) return;
      state.active = 0;
      stopBtn.disabled = true;
      root.dataset.state = "done";
    } else if (msg.type === "error") {
      status.textContent = `Drawing failed: ${msg.message}.`;
      status.classList.add("dl-bad");
      for (const w of state.workers) w.postMessage({ type: "cancel" });
      state.active = 0;
      stopBtn.disabled = true;
      root.dataset.state = "failed";
    }
  }

  function finish(final, stopped, ms, calls) {
    const side = state.json.size, size = pictureSize();
    state.result = { final, stopped, ms };
    paintGrid(finalCanvas, split(final, S.grid_n, size), side, 4, 2, state.json.channels);
    const st = state.settings;
    const steps_ = state.frames.length;
    const W = state.workers.length;
    finalCaption.textContent = `${state.model.title || state.model.name}: ${st.what}, guidance ${st.guidance}, ${steps_} steps, ${(ms / 1000).toFixed(1)} s on this computer`
      + (calls ? ` (${calls} model calls on ${W} worker${W > 1 ? "s" : ""}; ${(ms / Math.max(steps_, 1)).toFixed(0)} ms per step)` : "");
    results.hidden = false;
    status.textContent = stopped
      ? "Stopped early: below is the model's latest guess."
      : `Done: ${st.what} in ${(ms / 1000).toFixed(1)} s on this computer.`;
    at.max = String(Math.max(steps_, 1));
    at.value = String(Math.max(Math.floor(steps_ / 3), 1));
    paintOpened();
    root.dataset.ms = String(ms);
    root.dataset.state = stopped || st.label < 0 ? "done" : "sweeping";
    if (stopped || st.label < 0) { state.active = 0; stopBtn.disabled = true; }
    else sweepBox.hidden = false;
  }

  function paintOpened() {
    if (!state.frames.length) return;
    const side = state.json.size, size = side * side * state.json.channels;
    const k = clampNum(pick.value, 1, S.grid_n, 1) - 1;
    const f = state.frames[clampNum(at.value, 1, state.frames.length, 1) - 1];
    atOut.textContent = `${f.i + 1} of ${state.frames.length}`;
    if (!f.cond) {
      openRow.hidden = true;
      openNote.textContent = "This run asked for anything: with no label there is only one guess to show. Pick a class to see the two guesses and their mix.";
      return;
    }
    openRow.hidden = false;
    openNote.textContent = `Told the label is the network's guess when told what to draw; told nothing is its guess with no label. The guided mix starts from the untold guess and moves towards the told one, ${state.settings.guidance} times as far.`;
    [f.cond, f.uncond, f.x0].forEach((flat, j) => {
      paintGrid(openCanvases[j][0], [flat.subarray(k * size, (k + 1) * size)], side, 1, 0,
        state.json.channels);
    });
  }

  function paintSweep() {
    const side = state.json.size, size = side * side * state.json.channels;
    const m = S.sweep_n, cols = state.sweep.length, pad = 2, k = 4, head = 18;
    const colW = side + pad;
    const W = (cols * colW + pad) * k, H = (m * colW + pad) * k + head;
    sweepCanvas.width = W;
    sweepCanvas.height = H;
    const g = sweepCanvas.getContext("2d");
    g.imageSmoothingEnabled = false; // sharp pixels, crisp labels
    g.fillStyle = "#fff";
    g.fillRect(0, 0, W, H);
    const tmp = document.createElement("canvas");
    state.sweep.forEach((s, c) => {
      paintGrid(tmp, split(s.pics, m, size), side, 1, pad, state.json.channels);
      g.drawImage(tmp, c * colW * k, head, tmp.width * k, tmp.height * k);
      g.fillStyle = "#333";
      g.font = "14px sans-serif";
      g.fillText(`w = ${s.w}`, c * colW * k + 2 * k + 4, 14);
    });
    root.dataset.sweep = String(state.sweep.length);
  }

  // ---- wiring
  createBtn.addEventListener("click", start);
  stopBtn.addEventListener("click", stop);
  // a new knob value restarts the run at once (the worker drops the old one at its next call)
  for (const input of [guidance, steps, sampler, seed]) {
    input.addEventListener("change", () => { markChosen(); if (state.hasRun) start(); });
  }
  guidance.addEventListener("input", markChosen);
  steps.addEventListener("input", markChosen);
  pick.addEventListener("input", paintOpened);
  at.addEventListener("input", paintOpened);
  finalCanvas.addEventListener("click", (e) => {
    const r = finalCanvas.getBoundingClientRect();
    const col = Math.floor(((e.clientX - r.left) / r.width) * 4), row = Math.floor(((e.clientY - r.top) / r.height) * 4);
    pick.value = String(Math.min(3, Math.max(0, row)) * 4 + Math.min(3, Math.max(0, col)) + 1);
    paintOpened();
  });
  download.addEventListener("click", () => {
    finalCanvas.toBlob((blob) => {
      const a = el("a", { href: URL.createObjectURL(blob), download: "create_grid.png" });
      document.body.append(a);
      a.click();
      a.remove();
    });
  });

  const first = settings.model || (models[0] && models[0].name);
  if (!first) fail("error", "no model was exported for the browser");
  else loadModel(first, settings.what);

  return {
    /** A host (the Streamlit page) asks for another model or other starting values. */
    update(next, nextModels) {
      if (nextModels) state.models = nextModels;
      if (next.model && (!state.model || next.model !== state.model.name)) {
        Object.assign(S, next);
        guidance.value = S.guidance;
        steps.value = S.steps;
        sampler.value = S.sampler;
        seed.value = S.seed;
        loadModel(next.model, next.what);
      }
    },
    state,
  };
}
