"""Training data: the colour given to gray crops."""

from __future__ import annotations

import numpy as np
import torch

from diffusion_core.training.data import PatchSampler, Source, _edge_chroma, _smooth_chroma


def _step_image(P=96):
    y = torch.full((1, 1, P, P), 0.25)
    y[..., P // 2:] = 0.75  # two flat halves, one vertical edge in the middle
    return y


def _edge_share(chroma: torch.Tensor, P=96, half_width=10) -> float:
    """Share of the chroma's horizontal-gradient energy within half_width px of the edge."""
    d = (chroma[..., 1:] - chroma[..., :-1]).pow(2).sum(dim=(0, 1, 2))  # per column gap
    near = d[P // 2 - half_width:P // 2 + half_width].sum()
    return float(near / d.sum().clamp_min(1e-12))


def test_edge_chroma_changes_colour_where_brightness_changes():
    y = _step_image()
    edge = [_edge_share(_edge_chroma(y, torch.Generator().manual_seed(s))) for s in range(20)]
    smooth = [_edge_share(_smooth_chroma(1, 96, torch.Generator().manual_seed(s)))
              for s in range(20)]
    # 20 of 95 column gaps lie near the edge: a colour field that ignores it puts about a
    # fifth to a third of its changes there; the edge-following one most of them (both
    # halves can fall in one brightness band, so not every draw)
    assert np.median(smooth) < 0.45
    assert np.median(edge) > 0.7


def test_edge_chroma_is_a_function_of_the_generator():
    y = _step_image()
    a = _edge_chroma(y, torch.Generator().manual_seed(7))
    b = _edge_chroma(y, torch.Generator().manual_seed(7))
    c = _edge_chroma(y, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (1, 2, 96, 96)


def test_sampler_colourizes_gray_sources_with_edge_chroma():
    rng = np.random.default_rng(0)
    imgs = [np.repeat(rng.integers(0, 256, (120, 120, 1), dtype=np.uint8), 3, axis=2)]
    src = [Source("gray", imgs, 1.0, colourize=1.0)]
    x, gray = PatchSampler(src, 48, p_gray=0.0, p_edge_chroma=1.0).batch(
        4, torch.Generator().manual_seed(0))
    assert x.shape == (4, 3, 48, 48) and not gray.any()
    assert (x[:, 0] - x[:, 2]).abs().mean() > 0.01  # coloured, no longer gray
    x2, _ = PatchSampler(src, 48, p_gray=0.0, p_edge_chroma=0.0).batch(
        4, torch.Generator().manual_seed(0))
    assert not torch.equal(x, x2)  # the option changes the colouring
