// Copies the onnxruntime-web files the app serves (WASM build, single-threaded use) from
// node_modules into app/vendor/ (ignored by git). Run by `npm install` (postinstall) and by
// `npm run vendor`; the Makefile runs it after `npm ci`. Never a CDN: the app serves these.
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "..", "node_modules", "onnxruntime-web", "dist");
const out = join(here, "..", "app", "vendor");
// ort.wasm.min.mjs: the WASM-only ES module build; it imports the Emscripten glue (.mjs) and
// fetches the .wasm from env.wasm.wasmPaths (set to this folder by worker.js).
const FILES = ["ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"];

mkdirSync(out, { recursive: true });
const pkg = JSON.parse(readFileSync(join(dist, "..", "package.json"), "utf8"));
const files = {};
for (const f of FILES) {
  copyFileSync(join(dist, f), join(out, f));
  files[f] = statSync(join(out, f)).size;
}
// what was copied, read by the Python side to tell whether browser mode can be offered
writeFileSync(join(out, "manifest.json"),
  JSON.stringify({ package: "onnxruntime-web", version: pkg.version, files }, null, 1) + "\n");
console.log(`onnxruntime-web ${pkg.version}: copied ${FILES.length} files to app/vendor/`);
