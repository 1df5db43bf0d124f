"""The worlds on the pages: the Create page's world picker (AppTest) and the Train page's
world presets (a tiny conditional run from the shipped subset appears on Create at once)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from streamlit.testing.v1 import AppTest

from diffusion_core.app.create import (
    SAMPLE_PX,
    CreateRequest,
    big_grid,
    class_examples,
    create_models,
    default_what,
    pick_world,
    what_text,
    world_text,
)
from diffusion_core.app.train import TrainRequest, prepare_form
from diffusion_core.jobs import train as tj
from diffusion_core.models import registry
from diffusion_core.training.presets import PRESETS, build_config
from diffusion_core.training.runs import conditional_classes
from diffusion_core.training.worlds import WORLDS, examples_strip
from tests.waiting import open_page, wait_for_page_job

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages/7_Create.py")
TINY = {"size": "tiny", "batch": 8, "steps": 6, "preview_every": 3}


def _page(**state) -> AppTest:
    at = open_page(PAGE, **state)
    assert not at.error, [e.value for e in at.error]
    return at


def test_world_picker_defaults_to_clothes_and_a_sneaker(user_models_dir):
    at = _page()
    picker = at.radio(key="create_model")
    assert picker.options[:3] == ["Clothes", "Digits", "Doodles"]
    assert picker.value == "fashion"
    what = at.radio(key="create_what")
    assert what.value == "Sneaker" and "a sneaker" in what.options
    assert "an ankle boot" in what.options and "a T-shirt/top" in what.options
    # the class pictures: one per class with its name (shipped in the model's folder)
    assert list(at.image[0].captions) == list(WORLDS["fashion"].classes)
    assert len(at.image[0].value) == 10
    assert "asked for **a sneaker** with guidance 3" in " ".join(
        c.value for c in at.caption)


def test_switching_world_asks_for_its_showpiece_and_draws_it(user_models_dir):
    at = _page()
    at.radio(key="create_model").set_value("doodles").run()
    assert not at.exception
    assert at.radio(key="create_what").value == "cat"
    assert "a bicycle" in at.radio(key="create_what").options
    at.session_state["create_steps"] = 5
    at.run()
    at.button(key="create_run").click().run()
    wait_for_page_job(at, "create_job", "the run", 240)
    res = at.session_state["create_job"].result
    assert res.final.shape == (16, 1, 28, 28)
    assert "What it drew" in [h.value for h in at.header]


def test_hostile_world_value_falls_back_to_the_first_world(user_models_dir):
    at = _page(create_model="../../etc/passwd", create_what="<script>")
    assert at.radio(key="create_model").value == "fashion"
    assert at.radio(key="create_what").value == "Sneaker"


def test_world_words_examples_and_grid_size():
    models = create_models()
    fashion = pick_world(models, "fashion")
    assert world_text(fashion) == "Clothes" and default_what(fashion) == "Sneaker"
    assert pick_world(models, "nope").name == "fashion"
    assert what_text("Ankle boot") == "an ankle boot" and what_text("T-shirt/top") == \
        "a T-shirt/top" and what_text("8") == "an 8" and what_text("cat") == "a cat"
    pics, names = class_examples(fashion, ["anything", "Sneaker", "Bag"])
    assert names == ["Sneaker", "Bag"] and pics[0].shape == (84, 84)
    tile = examples_strip("fashion")[:, 7 * 28:8 * 28]
    np.testing.assert_array_equal(pics[0][::3, ::3], tile)  # nearest-neighbour, x3
    req = CreateRequest.clamped(info=fashion, what="Bag")
    assert (req.label, req.size) == (8, 28)
    g = big_grid(torch.zeros(16, 1, 28, 28))
    assert g.width >= 4 * SAMPLE_PX >= 4 * 96


def test_world_presets_build_small_conditional_gray_networks():
    for w in WORLDS:
        p = PRESETS[w]
        cfg = build_config("x", w, None, [f"{w}:subset"], num_classes=len(WORLDS[w].classes))
        assert p.dataset == w and cfg.kind == "world" and cfg.patch == 28
        assert cfg.net["in_channels"] == 1 and cfg.net["num_classes"] == len(WORLDS[w].classes)
        assert conditional_classes(w) == list(WORLDS[w].classes)
    form = {"train_dataset": "fashion"}
    prepare_form(form, has_gpu=False)
    assert form["train_preset"] == "fashion" and form["train_conditional"] is True
    form["train_conditional"] = False  # the visitor's own choice stays
    prepare_form(form, has_gpu=False)
    assert form["train_conditional"] is False


def test_world_preset_job_appears_on_create_with_its_classes(models_dir):
    req = TrainRequest("doodles", "doodles", "my-doodles", TINY, conditional=True)
    res = tj.start_training(req.name, req.preset, req.overrides, conditional=True)
    assert res.ok, res.message
    assert res.job.wait(240) and res.job.state == "done", res.job.error
    card = res.job.snapshot()["card"]
    assert card["classes"] == list(WORLDS["doodles"].classes) and card["size"] == 28
    info = next(m for m in registry.list_models() if m.name == "my-doodles")
    offered = pick_world(create_models(), "my-doodles")
    assert offered.name == "my-doodles" and world_text(offered) == "my-doodles (yours)"
    pics, names = class_examples(info, ["cat"])
    assert names == ["cat"] and len(pics) == 1
    # an alias is for the command line; the menu falls back to the world's showpiece
    assert CreateRequest.clamped(info=info, what="kitten").what == "cat"
    assert CreateRequest.clamped(info=info, what="cat").label == 2
