"""The bad-input corpus, file by file: what the loader (and so every page) makes of it.

Writes the corpus with tests/data/make_bad.py into tests/data/bad/ (git-ignored), loads each
file with ``diffusion_core.media.decode.load_image`` as the pages do (working size 512), and writes
bench/results/bad_inputs.md: the outcome (picture and the notes shown with it, or the one
message shown instead), the time, and the Python heap peak of the load.

    python bench/bad_inputs.py
"""

from __future__ import annotations

import importlib.util
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "results" / "bad_inputs.md"
BAD = ROOT / "tests" / "data" / "bad"


def _make_bad():
    spec = importlib.util.spec_from_file_location("make_bad", ROOT / "tests" / "data" / "make_bad.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def main() -> int:
    from diffusion_core.media.decode import ImageLoadError, load_image

    corpus = _make_bad().make_corpus(BAD)
    rows, crashes = [], 0
    for name, path in corpus.items():
        data = path.read_bytes()
        tracemalloc.start()
        t0 = time.perf_counter()
        try:
            im = load_image(data, max_side=512)
            c, h, w = im.tensor.shape
            outcome = f"loaded: {im.original_size[0]}×{im.original_size[1]} {im.format or ''} → " \
                      f"{w}×{h}, {'RGB' if c == 3 else 'gray'}"
            msg = "; ".join(im.notes) or "–"
        except ImageLoadError as e:
            outcome, msg = "refused", str(e)
        except Exception as e:  # noqa: BLE001 - the table must show a crash, not stop at it
            outcome, msg = f"CRASH ({type(e).__name__})", str(e)
            crashes += 1
        dt = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        rows.append((name, len(data), outcome, msg.replace("|", "/").replace("\n", " "), dt, peak))
    lines = ["# Bad and unusual inputs", "",
             f"*{time.strftime('%Y-%m-%d %H:%M')}, `python bench/bad_inputs.py`: {len(rows)} files "
             f"from tests/data/make_bad.py, loaded as the pages load uploads (working size 512). "
             f"Crashes: {crashes}.*", "",
             "| file | bytes | outcome | what the user reads | time | heap peak |",
             "|---|---|---|---|---|---|"]
    for name, size, outcome, msg, dt, peak in rows:
        lines.append(f"| `{name}` | {size:,} | {outcome} | {msg} | {1000 * dt:.0f} ms | "
                     f"{peak:.1f} MB |")
    md = "\n".join(lines) + "\n"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(md)
    print(md)
    return 1 if crashes else 0


if __name__ == "__main__":
    raise SystemExit(main())
