// The forward-process scrubber of the static site: the built-in sample pictures, one noise
// draw and each schedule's alpha-bar table (samples/index.json, written by export-site).
// x_t = sqrt(ab_t) * x0 + sqrt(1 - ab_t) * eps, for every slider move, in the browser: the same
// mix as diffusion_core.maths.forward.q_sample and the app's Add-noise page.

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v;
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const kid of kids) if (kid != null) e.append(kid);
  return e;
}

function loadImage(src) {
  return new Promise((res, rej) => {
    const im = new Image();
    im.onload = () => res(im);
    im.onerror = () => rej(new Error(`${src} could not be loaded`));
    im.src = src;
  });
}

function pixels(im, w, h) {
  const c = document.createElement("canvas");
  c.width = w;
  c.height = h;
  const g = c.getContext("2d");
  g.drawImage(im, 0, 0);
  return g.getImageData(0, 0, w, h).data;
}

export async function mountScrubber(root) {
  const r = await fetch("samples/index.json");
  if (!r.ok) throw new Error(`samples/index.json: HTTP ${r.status}`);
  const D = await r.json();
  const noiseImg = await loadImage("samples/" + D.noise.file);
  const noisePx = pixels(noiseImg, D.noise.side, D.noise.side);
  const T = D.T;
  root.innerHTML = "";
  const pictures = el("div", { class: "dl-classes", role: "group", "aria-label": "Picture" });
  const schedule = el("select", { "aria-label": "Schedule" });
  for (const name of Object.keys(D.schedules)) schedule.append(el("option", { value: name, text: name }));
  schedule.value = D.default_schedule;
  const slider = el("input", { type: "range", min: 0, max: T, step: 1, value: Math.round(T / 4),
    "aria-label": "timestep t", class: "dl-t" });
  const tOut = el("b");
  const play = el("button", { text: "▶ Play" });
  const mix = el("div", { class: "dl-mix" });
  const xt = el("canvas", { class: "dl-pic", "aria-label": "x_t" });
  const nz = el("canvas", { class: "dl-pic", "aria-label": "the noise part" });
  const x0 = el("canvas", { class: "dl-pic", "aria-label": "the clean picture" });
  const about = el("div", { class: "dl-note" });
  root.append(
    el("div", { class: "dl-label", text: "Which picture?" }), pictures,
    el("div", { class: "dl-controls" }, play, el("label", { class: "dl-wide" }, "Step ", slider, " ", tOut),
      el("label", {}, "Schedule ", schedule)),
    mix,
    el("div", { class: "dl-row" },
      el("figure", {}, xt, el("figcaption", { text: "xₜ: what the model sees at step t" })),
      el("figure", {}, nz, el("figcaption", { text: "the noise part, √(1−ᾱₜ)·ε" })),
      el("figure", {}, x0, el("figcaption", { text: "the picture (step 0)" }))),
    about);

  let cur = null;
  async function choose(s) {
    const im = await loadImage("samples/" + s.file);
    const px = pixels(im, s.width, s.height);
    const n = s.width * s.height;
    const X = [0, 1, 2].map((c) => Float32Array.from({ length: n }, (_, i) => px[i * 4 + c] / 127.5 - 1));
    const E = [0, 1, 2].map((c) => Float32Array.from({ length: n }, (_, i) => {
      const x = i % s.width, y = Math.floor(i / s.width);
      const q = noisePx[(y * D.noise.side + x) * 4 + (s.gray ? 0 : c)];
      return ((q / 127.5) - 1) * D.noise.range; // 8 bits over [-range, range]
    }));
    for (const c of [xt, nz, x0]) { c.width = s.width; c.height = s.height; }
    x0.getContext("2d").drawImage(im, 0, 0);
    cur = { s, X, E, n };
    about.textContent = `${s.title}: ${s.description}`;
    for (const b of pictures.children) b.classList.toggle("dl-on", b.dataset.name === s.name);
    render();
  }

  function coefs(k) {
    if (k <= 0) return [1, 0];
    const a = D.schedules[schedule.value][Math.min(k - 1, T - 1)];
    return [Math.sqrt(a), Math.sqrt(1 - a)];
  }

  function render() {
    if (!cur) return;
    const k = Number(slider.value);
    const [a, b] = coefs(k);
    const gx = xt.getContext("2d"), gn = nz.getContext("2d");
    const ix = gx.createImageData(cur.s.width, cur.s.height), inz = gn.createImageData(cur.s.width, cur.s.height);
    for (let i = 0; i < cur.n; i++) {
      for (let c = 0; c < 3; c++) {
        const e = b * cur.E[c][i];
        ix.data[i * 4 + c] = Math.max(0, Math.min(255, (a * cur.X[c][i] + e + 1) * 127.5));
        inz.data[i * 4 + c] = Math.max(0, Math.min(255, (e + 1) * 127.5));
      }
      ix.data[i * 4 + 3] = inz.data[i * 4 + 3] = 255;
    }
    gx.putImageData(ix, 0, 0);
    gn.putImageData(inz, 0, 0);
    tOut.textContent = k <= 0 ? "0 (the clean picture)" : `${k} of ${T}`;
    mix.innerHTML = "";
    mix.append(`xₜ = `, el("b", { text: a.toFixed(2) }), " × picture + ", el("b", { text: b.toFixed(2) }),
      " × noise", k > 0 ? el("span", { class: "dl-note",
        text: `   (ᾱₜ = ${(a * a).toPrecision(3)}, signal-to-noise ratio ${(a * a / Math.max(b * b, 1e-30)).toPrecision(3)})` }) : null);
    root.dataset.t = String(k);
  }

  for (const s of D.samples) {
    const b = el("button", { class: "dl-world", "data-name": s.name, text: s.title, title: s.description });
    b.addEventListener("click", () => choose(s));
    pictures.append(b);
  }
  slider.addEventListener("input", render);
  schedule.addEventListener("change", render);
  let playing = false;
  play.addEventListener("click", () => {
    playing = !playing;
    play.textContent = playing ? "❚❚ Pause" : "▶ Play";
    if (!playing) return;
    if (Number(slider.value) >= T) slider.value = "0";
    const t0 = performance.now(), k0 = Number(slider.value);
    const tick = (now) => {
      if (!playing) return;
      const k = Math.min(T, Math.round(k0 + ((now - t0) / 5000) * T));
      slider.value = String(k);
      render();
      if (k < T) requestAnimationFrame(tick);
      else { playing = false; play.textContent = "▶ Play"; }
    };
    requestAnimationFrame(tick);
  });
  await choose(D.samples.find((s) => s.name === "cat") || D.samples[0]);
}
