"""Write models/<world>/README.md for the three 28x28 worlds from their card.json and the
benchmark file the evaluator wrote (bench/results/world_<world>.json), so every figure on a
card comes from a measured file.

    python scripts/world_cards.py            # after `python -m bench --only generate`
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diffusion_core.training.worlds import FLIPPED_WORLDS, WORLDS  # noqa: E402

WHAT = {"mnist": "draws the handwritten digit you ask for",
        "fashion": "draws the piece of clothing you ask for",
        "doodles": "draws the doodle you ask for"}


#: models trained in more than one stage: the commands after the first, in order, and why
STAGES = {
    "fashion": (
        "The first 4,000 steps followed `configs/fashion.json` (lr 8e-4, cosine decay from "
        "step 3,000, noise levels log-normal around log σ = -1.2, pictures mirrored at "
        "random). The judge then read many of its shoes as bags: every Fashion-MNIST shoe "
        "points left, and the model drew half of them pointing right (flipped back, 98-100 % "
        "of its sandals, sneakers and ankle boots were read right). It was resumed three "
        "times: to step 6,300 with a lower learning rate; to step 8,700 with more practice "
        "on heavy noise (log σ around -0.6, where a picture's class is decided); then, from "
        "8,700 to the end, also without mirroring (the code no longer mirrors clothes):",
        "    python -m diffusion_core train --config configs/fashion.json --out runs/fashion "
        "--resume --steps 9000 --lr 4e-4 --lr-decay-start 5500   # stopped at step 6,300",
        "    python -m diffusion_core train --config configs/fashion.json --out runs/fashion "
        "--resume --steps 12000 --lr 4e-4 --lr-decay-start 5500 --p-mean -0.6"
        "   # to 8,700 with mirroring, then again without"),
}


def card_text(key: str) -> str:
    card = json.loads((ROOT / "models" / key / "card.json").read_text())
    res_path = ROOT / "bench" / "results" / f"world_{key}.json"
    res = json.loads(res_path.read_text()) if res_path.exists() else None
    net = card["net"]
    w = WORLDS[key]
    cfg = card["config"]
    hours = card["wall_time_s"] / 3600
    lines = [
        f"# {key}: {WHAT[key]}", "",
        f"A class-conditional diffusion model of {w.title.lower()} at 28×28 (gray): "
        f"`DenoiserUNet` (base {net['base']}, mults {net['mults']}, blocks {net['blocks']}, "
        f"{card['parameters']:,} parameters) inside EDM's preconditioning, with a learned "
        f"label embedding (the {len(card['classes'])} classes plus a “no label” entry) added to "
        f"the noise embedding. The label is dropped {cfg['p_uncond']:.0%} of the time, so the "
        "one network also draws without it, and the Create page and `generate --label` mix "
        "the two guesses with classifier-free guidance (Ho & Salimans 2022).", "",
        "Classes (what `--label` and the Create page accept; any case): "
        + ", ".join(card["classes"]) + ". Aliases: "
        + (", ".join(f"{a} → {n}" for a, n in card["aliases"].items()) or "none") + ".", "",
        f"**Data:** {w.credit}: the train split only "
        f"({next(v for k, v in card['data'].items() if k != 'source'):,} pictures), "
        + ("mirrored left-right at random. " if key in FLIPPED_WORLDS else "")
        + "`examples.png` is the first picture of each class in the shipped subset.", "",
        f"**Training:** {card['steps']:,} steps of batch {card['batch']} (AdamW, "
        + (f"lr {cfg['lr']:g}, cosine decay from step {cfg['lr_decay_start']:,}, "
           if key not in STAGES else "in stages, below; ")
        + f"EMA {cfg['ema_decay']}), {card['wall_time_s']:,.0f} s ({hours:.1f} h) on "
        f"{card.get('hardware') or 'a 2-core CPU'} (the time is this run's own wall clock):",
        "",
        f"    python -m diffusion_core train --config configs/{key}.json --out runs/{key} "
        "[--resume]",
        *((STAGES[key][0], "", *STAGES[key][1:]) if key in STAGES else ()),
        f"    python -m diffusion_core export --run runs/{key} --out models/{key}", ""]
    if res is None:
        lines += ["Not benchmarked yet: `python -m bench --only generate`."]
    else:
        table = (ROOT / "bench" / "results" / f"world_{key}.md").read_text().split("\n", 2)[2]
        lines += [f"**Measured** (`python -m diffusion_core evaluate world --model {key} --steps "
                  f"20 --json bench/results/world_{key}.json`, {res['date']}, on the 2-core "
                  "development CPU; the judge is a small CNN trained on the world's real train "
                  "split; realism is a classifier two-sample test, 0.5 = indistinguishable):",
                  "", table.strip(), ""]
        speed = ROOT / "bench" / "results" / "world_speed.md"
        if speed.exists():
            rows = [r for r in speed.read_text().splitlines() if r.startswith(f"| {key} |")]
            lines += ["Seconds per 16 samples on a quieter machine (`python bench/world_speed.py`, "
                      "bench/results/world_speed.md; the figure in the table above can be slower "
                      "when other jobs share the 2 cores):", "",
                      "| model | size | sampler (model calls) | torch threads | seconds per 16 |",
                      "|---|---|---|---:|---:|", *rows, ""]
    return "\n".join(lines) + "\n"


def main() -> int:
    for key in WORLDS:
        path = ROOT / "models" / key / "README.md"
        path.write_text(card_text(key))
        print("wrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
