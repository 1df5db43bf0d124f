"""The home page opens with the idea in motion: the looping GIF first, then the words, then
the pages; the GIF is small, loops and was made at the size the page shows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
LOOP = ROOT / "docs" / "home_loop.gif"


def roughness(frame: Image.Image) -> float:
    """Mean absolute difference of neighbouring pixels (high for static)."""
    return float(np.abs(np.diff(np.asarray(frame, dtype=float), axis=1)).mean())


def test_home_page_shows_the_animation_before_the_words(user_models_dir):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    kinds = [type(el).__name__ for el in at.main.children.values()]
    assert kinds[:3] == ["Title", "Image", "Markdown"], kinds
    urls = at.image[0].value
    assert len(urls) == 1 and urls[0].endswith(".gif"), urls  # served as the GIF, not re-encoded
    assert "static" in at.image[0].proto.imgs[0].caption
    assert "Diffusion models" in at.markdown[0].value
    # then the pages, one link each
    assert kinds.index("PageLink") > kinds.index("Markdown")


def test_home_loop_file_is_a_small_looping_animation():
    assert LOOP.stat().st_size < 1_500_000
    with Image.open(LOOP) as im:
        assert im.format == "GIF" and im.info.get("loop") == 0  # loops for ever
        assert max(im.size) == 256
        frames = [f.convert("L").copy() for f in ImageSequence.Iterator(im)]
    assert len(frames) >= 12
    # it dissolves and comes back: the noisiest frame is much rougher than the first and last
    first, mid, last = roughness(frames[0]), max(map(roughness, frames)), roughness(frames[-1])
    assert mid > 2.5 * first and mid > 2.5 * last, (first, mid, last)
