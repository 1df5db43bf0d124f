"""The Add-noise page's first render stays light (issue 21, page budgets): its charts are
Vega-Lite rather than Plotly, the strip of stages is shown at about display size, and the
full-size strip is made only when someone downloads it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from streamlit.testing.v1 import AppTest

from diffusion_core.app.forward import STRIP_SHOWN_SIDE, ForwardView
from ui.figures import pixel_histogram_chart, schedule_chart

ROOT = Path(__file__).resolve().parent.parent
X0 = torch.rand(3, 300, 400) * 2 - 1


def test_strip_is_shown_small_and_downloaded_full_size():
    ramp = torch.linspace(-1, 1, 400).expand(3, 300, 400)  # dark on the left, light on the right
    view = ForwardView.clamped(ramp, "cosine", 500, 3)
    full, shown = view.strip(8), view.strip(8, max_side=120)
    assert full.width > 8 * 400 and full.height > 300
    assert 8 * 120 < shown.width < 8 * 130 and 90 < shown.height < 120  # 400 -> 120, 300 -> 90
    # each stage is shrunk whole (not cropped): the clean one still runs from dark to light
    clean = np.asarray(shown)[4:94, 4:124].astype(float)
    assert clean[:, :6].mean() < 20 and clean[:, -6:].mean() > 235
    # and after the noise is mixed in, as a screen shows it: shrinking averages noise away
    last_full = np.asarray(full)[4:304, -404:-4].astype(float)
    last_shown = np.asarray(shown)[4:94, -124:-4].astype(float)
    assert last_shown.std() < 0.6 * last_full.std()
    assert STRIP_SHOWN_SIDE <= 256


def test_charts_are_vega_lite_specs_of_the_schedule_and_the_pixels():
    view = ForwardView.clamped(X0, "linear", 1000, 0)
    spec = schedule_chart(view, 250)
    rows = spec["data"]["values"]
    assert len(rows) == 1000 and rows[0]["step"] == 1 and rows[-1]["step"] == 1000
    assert rows[0]["alpha_bar"] > 0.99 > 0.01 > rows[-1]["alpha_bar"]
    assert spec["layer"][2]["data"]["values"] == [{"step": 250}]  # the marker at the step
    assert spec["resolve"]["scale"]["y"] == "independent"  # two axes: alpha-bar and log SNR
    hist = pixel_histogram_chart(view.at(1000).x_t)
    bars = hist["layer"][0]["data"]["values"]
    width = bars[0]["hi"] - bars[0]["lo"]
    assert abs(sum(b["density"] for b in bars) * width - 1) < 0.02  # a density: area 1
    assert max(b["density"] for b in bars) < 0.45  # pure noise: about N(0, 1), peak 0.40


def _kinds(node, out: list) -> list:
    for child in getattr(node, "children", {}).values():
        out.append(getattr(child, "type", ""))
        _kinds(child, out)
    return out


def test_page_draws_no_plotly_and_keeps_the_download(user_models_dir):
    at = AppTest.from_file(str(ROOT / "pages/1_Add_noise.py"), default_timeout=120)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    kinds = _kinds(at._tree, [])
    assert kinds.count("vega_lite_chart") == 2 and "plotly_chart" not in kinds
    assert [b.label for b in at.get("download_button")] == ["Download this strip (PNG)"]
