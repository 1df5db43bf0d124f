// The Web Worker that draws: onnxruntime-web (WASM, one thread) runs the exported model and
// sampler.js runs the sampler and the guidance, off the page's thread. The page may start
// several (one per core, up to 4) and give each a part of the grid: every picture's noise
// comes from its own stream, so the grid is the same however it is split.
//
// Messages in:
//   {type: "load", model: "models/<name>/", json: {...model.json...}}
//   {type: "run", id, label, guidance, steps, sampler, seed, first, count, eta, sweep,
//    sweepN, start?, noise?}  (pictures first..first+count-1 of the grid; sweep: the
//    strengths this worker redraws the grid's first sweepN pictures at; start/noise: injected
//    pictures for the agreement test)
//   {type: "cancel"}  (a new knob value or Stop: the running loop ends before its next
//                      model call; a new run also cancels the one before it)
// Messages out:
//   {type: "ready", msPerCall, ort}  {type: "error", id?, message}
//   {type: "frame", id, first, count, i, n, sigma, x, x0, cond, uncond}  (one per step,
//    Float32Arrays of `count` pictures each, transferred)
//   {type: "done", id, first, count, final, stopped, ms, calls, msPerCall}
//   {type: "sweep", id, w, pics} and {type: "sweepDone", id, ms}
//   {type: "cancelled", id}

import * as ort from "./vendor/ort.wasm.min.mjs";
import { Cancelled, edmSigmas, guidedDenoiser, normalStream, runSampler, toVp } from "./sampler.js";

let session = null;
let meta = null;
let size = 0; // values per picture
let current = 0; // the run that may go on; any other id stops at its next call
let running = Promise.resolve(); // runs one after the other (one session, one thread)
let calls = 0;

// A zero-delay yield to the worker's event loop, so a message (cancel, a new run) is seen
// between two model calls; setTimeout(0) would be clamped to 4 ms after a few.
const channel = new MessageChannel();
const waiting = [];
channel.port1.onmessage = () => { const r = waiting.shift(); if (r) r(); };
const yieldNow = () => new Promise((r) => { waiting.push(r); channel.port2.postMessage(0); });

function fail(message, id) { postMessage({ type: "error", id, message }); }

async function load(msg) {
  meta = msg.json;
  size = meta.channels * meta.size * meta.size;
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.wasm.wasmPaths = new URL("./vendor/", self.location.href).href;
  ort.env.logLevel = "error";
  ort.env.wasm.initTimeout = 30000; // a runtime that never starts fails instead of hanging
  // A .wasm blocked on the way (a filter, a proxy, a missing npm install) makes the runtime's
  // own loader hang or abort without an answer: ask for the file first, cheaply.
  const wasmUrl = new URL("./vendor/ort-wasm-simd-threaded.wasm", self.location.href);
  try {
    const h = await fetch(wasmUrl, { method: "HEAD", cache: "no-store" });
    if (!h.ok) throw new Error(`HTTP ${h.status}`);
  } catch (e) {
    return fail(`the WebAssembly file could not be loaded (${e.message || e})`);
  }
  const url = new URL(msg.model + meta.onnx.file, self.location.href);
  url.searchParams.set("v", meta.onnx.sha256.slice(0, 12)); // a re-export is fetched anew
  const t0 = performance.now();
  let bytes;
  try {
    const r = await fetch(url);
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    bytes = new Uint8Array(await r.arrayBuffer());
  } catch (e) {
    return fail(`the model file could not be downloaded (${e.message || e})`);
  }
  try {
    session = await ort.InferenceSession.create(bytes, {
      executionProviders: ["wasm"], graphOptimizationLevel: "all",
    });
  } catch (e) {
    return fail(`the WebAssembly runtime could not start (${String(e.message || e).slice(0, 200)})`);
  }
  // one warm-up call: the first is slow; it also times a call for the page
  const x = new Float32Array(2 * size);
  await call(x, 1.0, [0, -1]);
  const t1 = performance.now();
  await call(x, 1.0, [0, -1]);
  const t2 = performance.now();
  postMessage({ type: "ready", msPerCall: t2 - t1, loadMs: t1 - t0, ort: ort.env.versions?.web || "" });
}

async function call(pair, sigma, labels) {
  const shape = [2, meta.channels, meta.size, meta.size];
  const feeds = {
    x: new ort.Tensor("float32", pair, shape),
    sigma: new ort.Tensor("float32", new Float32Array([sigma, sigma]), [2]),
    label: new ort.Tensor("int64", BigInt64Array.from(labels.map((v) => BigInt(v))), [2]),
  };
  const out = await session.run(feeds);
  calls++;
  return out.x0.data;
}

function pack(pictures) {
  const out = new Float32Array(pictures.length * size);
  pictures.forEach((p, k) => out.set(p, k * size));
  return out;
}

function unpack(flat, count) {
  const out = [];
  for (let k = 0; k < count; k++) out.push(flat.slice(k * size, (k + 1) * size));
  return out;
}

/** Sample k of a grid drawn with `seed` has its own noise stream (its starting noise, then
 * any fresh noise its steps add), so a grid split across workers is the same grid, and the
 * sweep redraws the grid's first pictures from the same starting noise. */
function sampleStream(seed, k) {
  const mix = (h) => {
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  };
  return normalStream(mix((seed >>> 0) ^ mix(k + 1)));
}

async function run(msg) {
  const id = msg.id;
  const beforeCall = async () => {
    await yieldNow();
    if (current !== id) throw new Cancelled();
  };
  const sch = meta.schedule;
  const sigmas = edmSigmas(msg.steps, sch.sigma_min, sch.sigma_max, sch.rho);
  const first = msg.first || 0, count = msg.count;
  const streams = Array.from({ length: count }, (_, j) => sampleStream(msg.seed, first + j));
  // the starting noise: injected (the agreement test) or drawn from each picture's stream
  const z0 = msg.start ? unpack(msg.start, count) : streams.map((r) => r.pictures(1, size)[0]);
  const scaled = (z) => z.map((v) => Math.fround(v * sigmas[0]));
  const injected = msg.noise ? msg.noise.map((flat) => unpack(flat, count)) : null;
  let drawn = 0;
  const noise = () => (injected ? injected[drawn++] : streams.map((r) => r.pictures(1, size)[0]));
  const label = msg.label, w = msg.guidance;
  const t0 = performance.now();
  const calls0 = calls;
  try {
    const den = guidedDenoiser(call, label, w, { both: true, beforeCall, size });
    const res = await runSampler(msg.sampler, den, z0.map(scaled), sigmas, {
      eta: msg.eta || 0, noise,
      onStep: (info) => {
        const frame = {
          type: "frame", id, first, count, i: info.i, n: info.n, sigma: info.sigma,
          x: pack(info.x.map((p) => toVp(p, info.sigma))), x0: pack(info.denoised),
          cond: info.cond ? pack(info.cond) : null, uncond: info.uncond ? pack(info.uncond) : null,
        };
        postMessage(frame, [frame.x.buffer, frame.x0.buffer,
          ...(frame.cond ? [frame.cond.buffer, frame.uncond.buffer] : [])]);
      },
    });
    const ms = performance.now() - t0;
    const done = calls - calls0;
    const final = pack(res.x);
    postMessage({ type: "done", id, first, count, final, stopped: res.stopped, ms, calls: done,
      msPerCall: ms / Math.max(done, 1) }, [final.buffer]);
    const sweep = label >= 0 && msg.sweep ? msg.sweep : [];
    // the guidance sweep: the grid's first pictures, from the same starting noise, at each
    // strength this worker was given
    const t1 = performance.now();
    for (const ws of sweep) {
      const m = msg.sweepN || 4;
      const rs = Array.from({ length: m }, (_, k) => sampleStream(msg.seed, k));
      const start = rs.map((r) => scaled(r.pictures(1, size)[0]));
      const den2 = guidedDenoiser(call, label, ws, { both: false, beforeCall, size });
      const r2 = await runSampler(msg.sampler, den2, start, sigmas, {
        eta: msg.eta || 0, noise: () => rs.map((r) => r.pictures(1, size)[0]),
      });
      const pics = pack(r2.x);
      postMessage({ type: "sweep", id, w: ws, pics }, [pics.buffer]);
    }
    postMessage({ type: "sweepDone", id, ms: performance.now() - t1 });
  } catch (e) {
    if (e instanceof Cancelled) postMessage({ type: "cancelled", id });
    else fail(`drawing failed (${String(e.message || e).slice(0, 200)})`, id);
  }
}

self.onmessage = (e) => {
  const msg = e.data;
  if (msg.type === "load") {
    load(msg).catch((err) => fail(String(err.message || err)));
  } else if (msg.type === "run") {
    if (!session) return fail("the model is not loaded", msg.id);
    current = msg.id;
    running = running.then(() => run(msg));
  } else if (msg.type === "cancel") {
    current = 0;
  }
};
