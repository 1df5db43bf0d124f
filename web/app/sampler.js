// The sampler contract of diffusion_core/maths/samplers.py, in JavaScript, for the browser.
//
// Every picture is a Float32Array (C*H*W values, model units [-1, 1]) in EDM's
// variance-exploding coordinates: the state x at noise level sigma, and a denoiser returns its
// guess of the clean picture. `denoise(xs, sigma)` takes an array of pictures and resolves to
// {x0: [...], cond?: [...], uncond?: [...]} (the guided mix, and the two guesses it came from).
//
// The arithmetic follows the Python step rules line by line, rounding to float32 where torch
// does (Math.fround), so that given the same starting noise and the same injected noise the
// two agree to float rounding plus the ONNX/torch difference (tests/test_browser_web_sampler.py
// holds them within 1e-3). The seeded noise itself (mulberry32 + Box-Muller here, torch's
// generator there) differs: the same seed draws different pictures in the browser and on the
// server.

const f = Math.fround;

/** EDM / Karras et al. (2022) noise levels: n levels from sigmaMax to sigmaMin and a final 0,
 * computed in float64 and rounded to float32, as maths.samplers.edm_sigmas does. */
export function edmSigmas(n, sigmaMin = 0.002, sigmaMax = 80.0, rho = 7.0) {
  n = Math.max(1, n | 0);
  const out = new Array(n + 1);
  const a = Math.pow(sigmaMax, 1 / rho), b = Math.pow(sigmaMin, 1 / rho);
  for (let i = 0; i < n; i++) out[i] = f(Math.pow(a + (i / Math.max(n - 1, 1)) * (b - a), rho));
  out[n] = 0;
  return out;
}

/** Samplers by name: label, model calls per step, and whether it injects fresh noise. */
export const SAMPLERS = {
  ddim: { label: "DDIM (deterministic when eta = 0)", short: "DDIM", calls: 1 },
  ddpm: { label: "DDPM (ancestral, adds fresh noise each step)", short: "DDPM", calls: 1, noisy: true },
  dpmpp_2m: { label: "DPM-Solver++ (2M), high-order", short: "DPM-Solver++", calls: 1 },
  heun: { label: "Heun / EDM, 2nd order (2 model calls per step)", short: "Heun", calls: 2 },
};

/** Model calls of a run of `steps` steps (the last step, to sigma 0, makes one). */
export function modelCalls(sampler, steps) {
  const spec = SAMPLERS[sampler];
  return steps <= 0 ? 0 : spec.calls * (steps - 1) + 1;
}

// ------------------------------------------------------------------ seeded noise

/** A seeded standard-normal stream (mulberry32 uniforms, Box-Muller pairs). */
export function normalStream(seed) {
  let a = (seed >>> 0) ^ 0x9e3779b9;
  let spare = null;
  const uniform = () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const next = () => {
    if (spare !== null) { const v = spare; spare = null; return v; }
    let u = 0;
    while (u <= 1e-12) u = uniform();
    const r = Math.sqrt(-2 * Math.log(u)), th = 2 * Math.PI * uniform();
    spare = r * Math.sin(th);
    return r * Math.cos(th);
  };
  /** `count` pictures of `size` values each, standard normal, float32. */
  const pictures = (count, size) => {
    const out = [];
    for (let k = 0; k < count; k++) {
      const p = new Float32Array(size);
      for (let j = 0; j < size; j++) p[j] = next();
      out.push(p);
    }
    return out;
  };
  return { next, pictures };
}

// ------------------------------------------------------------------ step arithmetic

/** eps = (x - x0) / sigma, per value, as float32 (zeros at sigma 0). */
function epsOf(x, d, s) {
  const e = new Float32Array(x.length);
  if (s > 0) for (let j = 0; j < x.length; j++) e[j] = f(f(x[j] - d[j]) / s);
  return e;
}

/** One DDIM move of x at sigma s to sn given x0 guess d (maths.samplers.ddim_step); `z` is
 * the fresh noise when eta > 0 (drawn only where c > 0, as the Python step draws it). */
export function ddimStep(x, d, s, sn, eta, z) {
  if (sn <= 0 || s <= 0) return Float32Array.from(d);
  const eps = epsOf(x, d, s);
  let c = 0;
  if (eta > 0) c = Math.min(sn, eta * Math.sqrt(Math.max((sn * sn * (s * s - sn * sn)) / (s * s), 0)));
  const a = f(Math.sqrt(Math.max(sn * sn - c * c, 0)));
  const out = new Float32Array(x.length);
  for (let j = 0; j < x.length; j++) out[j] = f(d[j] + f(a * eps[j]));
  if (c > 0) {
    const cf = f(c);
    for (let j = 0; j < x.length; j++) out[j] = f(out[j] + f(cf * z[j]));
  }
  return out;
}

/** DDPM's ancestral move (maths.samplers.sample_ddpm's rule) with fresh noise z. */
export function ddpmStep(x, d, s, sn, z) {
  if (sn <= 0 || s <= 0) return Float32Array.from(d);
  const ab = 1 / (1 + s * s), abp = 1 / (1 + sn * sn);
  const alpha = ab / abp, beta = 1 - alpha;
  const c0 = f((Math.sqrt(abp) * beta) / (1 - ab));
  const ct = f((Math.sqrt(alpha) * (1 - abp)) / (1 - ab));
  const sd = f(Math.sqrt((beta * (1 - abp)) / (1 - ab)));
  const sab = f(Math.sqrt(ab)), sabp = f(Math.sqrt(abp));
  const out = new Float32Array(x.length);
  for (let j = 0; j < x.length; j++) {
    const xt = f(x[j] * sab);
    const xp = f(f(f(c0 * d[j]) + f(ct * xt)) + f(sd * z[j]));
    out[j] = f(xp / sabp);
  }
  return out;
}

// ------------------------------------------------------------------ the loop

export class Cancelled extends Error {
  constructor() { super("cancelled"); this.name = "Cancelled"; }
}

/**
 * Run `sampler` on the pictures `xs` (an array of Float32Array) down the levels `sigmas`.
 *
 * options:
 *  - eta: DDIM's fresh noise (0: deterministic)
 *  - noise(i): the fresh noise of step i (an array like xs), for DDPM and DDIM with eta > 0;
 *    called only at the steps where Python's sampler draws it, in the same order
 *  - onStep(info): after each model call of a step's first guess, before the move, with
 *    {i, n, sigma, sigmaNext, x, denoised, cond, uncond}; it may return (or resolve to)
 *    "stop" to end the run with the latest guess, as StopSampling does in Python
 * Resolves to {x: the final pictures, stopped}.
 */
export async function runSampler(sampler, denoise, xs, sigmas, options = {}) {
  const { eta = 0, noise = null, onStep = null } = options;
  if (!SAMPLERS[sampler]) throw new Error(`unknown sampler ${sampler}`);
  const n = sigmas.length - 1;
  let x = xs;
  let denoised = xs;
  let last = null; // DPM-Solver++(2M): the previous guess and step
  const need = (i) => {
    if (!noise) throw new Error(`${sampler} needs fresh noise at step ${i}`);
    return noise(i);
  };
  for (let i = 0; i < n; i++) {
    const s = sigmas[i], sn = sigmas[i + 1];
    const out = s > 0 ? await denoise(x, s) : { x0: x };
    denoised = out.x0;
    if (onStep) {
      const said = await onStep({ i, n, sigma: s, sigmaNext: sn, x, denoised,
        cond: out.cond || null, uncond: out.uncond || null });
      if (said === "stop") return { x: denoised, stopped: true };
    }
    if (sampler === "ddim") {
      const z = eta > 0 && sn > 0 && s > 0 ? need(i) : null;
      x = x.map((xk, k) => ddimStep(xk, denoised[k], s, sn, eta, z && z[k]));
    } else if (sampler === "ddpm") {
      const z = sn > 0 && s > 0 ? need(i) : null;
      x = x.map((xk, k) => ddpmStep(xk, denoised[k], s, sn, z && z[k]));
    } else if (sampler === "heun") {
      if (s <= 0) continue;
      const h = f(sn - s);
      const ds = x.map((xk, k) => epsOf(xk, denoised[k], s));
      let next = x.map((xk, k) => {
        const o = new Float32Array(xk.length);
        for (let j = 0; j < xk.length; j++) o[j] = f(xk[j] + f(h * ds[k][j]));
        return o;
      });
      if (sn > 0) {
        const d2 = (await denoise(next, sn)).x0;
        const hh = f((sn - s) * 0.5);
        next = x.map((xk, k) => {
          const e2 = epsOf(next[k], d2[k], sn);
          const o = new Float32Array(xk.length);
          for (let j = 0; j < xk.length; j++) o[j] = f(xk[j] + f(hh * f(ds[k][j] + e2[j])));
          return o;
        });
      }
      x = next;
    } else if (sampler === "dpmpp_2m") {
      if (sn <= 0 || s <= 0) { x = denoised.map((d) => Float32Array.from(d)); continue; }
      const t = -Math.log(s), tn = -Math.log(sn), h = tn - t;
      let D = denoised;
      if (last) {
        const r = last.h / h;
        const a = f(1 + 1 / (2 * r)), b = f(1 / (2 * r));
        D = denoised.map((d, k) => {
          const o = new Float32Array(d.length);
          for (let j = 0; j < d.length; j++) o[j] = f(f(a * d[j]) - f(b * last.d[k][j]));
          return o;
        });
      }
      last = { d: denoised, h };
      const ratio = f(sn / s), em = f(Math.expm1(-h));
      x = x.map((xk, k) => {
        const o = new Float32Array(xk.length);
        for (let j = 0; j < xk.length; j++) o[j] = f(f(ratio * xk[j]) - f(em * D[k][j]));
        return o;
      });
    }
  }
  return { x, stopped: false };
}

// ------------------------------------------------------------------ guidance

/**
 * Classifier-free guidance over a batch-2 model (maths.samplers.Guided): `call(x2, sigma2,
 * label2)` runs the ONNX file on two pictures and resolves to their x0 guesses.
 *
 * With a label (>= 0) each picture is one call: itself told the label and told nothing; the
 * mix is uncond + w * (cond - uncond). `both` keeps both guesses at w = 0 and 1 too (the
 * page shows them); without it w = 1 (told only) and w = 0 (untold only) need one guess per
 * picture and two pictures share a call, as does a run with no label (-1).
 * `beforeCall()` runs before every call (the worker yields there so that a new knob value
 * or Stop is seen at once, and throws Cancelled).
 */
export function guidedDenoiser(call, label, w, { both = true, beforeCall = null, size } = {}) {
  const wf = f(w);
  const single = label < 0 || (!both && (w === 0 || w === 1));
  const asked = label < 0 ? -1 : (w === 0 && !both ? -1 : label);
  return async (xs, sigma) => {
    const out = { x0: new Array(xs.length) };
    if (single) {
      for (let k = 0; k < xs.length; k += 2) {
        if (beforeCall) await beforeCall();
        const pair = new Float32Array(2 * size);
        pair.set(xs[k], 0);
        if (k + 1 < xs.length) pair.set(xs[k + 1], size);
        const r = await call(pair, sigma, [asked, asked]);
        out.x0[k] = r.slice(0, size);
        if (k + 1 < xs.length) out.x0[k + 1] = r.slice(size, 2 * size);
      }
      return out;
    }
    out.cond = new Array(xs.length);
    out.uncond = new Array(xs.length);
    for (let k = 0; k < xs.length; k++) {
      if (beforeCall) await beforeCall();
      const pair = new Float32Array(2 * size);
      pair.set(xs[k], 0);
      pair.set(xs[k], size);
      const r = await call(pair, sigma, [label, -1]);
      const c = r.slice(0, size), u = r.slice(size, 2 * size);
      const mix = new Float32Array(size);
      for (let j = 0; j < size; j++) mix[j] = f(u[j] + f(wf * f(c[j] - u[j])));
      out.cond[k] = c;
      out.uncond[k] = u;
      out.x0[k] = mix;
    }
    return out;
  };
}

/** The DDPM-space picture of a state (maths.samplers.to_vp): x / sqrt(1 + sigma^2). */
export function toVp(x, sigma) {
  const c = Math.sqrt(1 + sigma * sigma);
  const o = new Float32Array(x.length);
  for (let j = 0; j < x.length; j++) o[j] = x[j] / c;
  return o;
}
