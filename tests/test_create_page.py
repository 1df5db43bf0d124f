"""AppTest: the Create page asks the older conditional digits model (digits_cond) for a 7, runs
it to the end, and shows the grid, one sample opened up, the guidance sweep and the downloads;
the request clamps what widgets send; "anything" runs without guidance. The world picker and
the 28x28 worlds: tests/test_worlds_page.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from diffusion_core.app.create import (
    DEFAULT_SAMPLER,
    CreateRequest,
    create_models,
    opened_up,
    what_choices,
)
from diffusion_core.jobs.create import SWEEP
from diffusion_core.models.registry import find_model
from diffusion_core.training.digits import DigitsClassifier
from tests.waiting import open_page, page_texts, wait_for_page_job

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages/7_Create.py")


def _wait_done(at, timeout: float = 240.0) -> None:
    wait_for_page_job(at, "create_job", "the run", timeout)


def _texts(at) -> str:
    return page_texts(at, "info")


def _page(**state) -> AppTest:
    at = open_page(PAGE, **state)
    return at


def test_create_draws_a_seven_with_guidance(user_models_dir):
    at = _page(create_model="digits_cond", create_what="7", create_guidance=3.0,
               create_steps=12, create_seed=0)
    assert not at.error, [e.value for e in at.error]
    assert at.radio(key="create_what").value == "7"
    assert "seven" not in at.radio(key="create_what").options  # names from the card
    at.button(key="create_run").click().run()
    _wait_done(at)
    assert not at.exception and not at.error
    job = at.session_state["create_job"]
    res = job.result
    assert job.state == "done" and res.final.shape == (16, 1, 32, 32)
    assert len(res.frames) == 12 and res.frames[0].cond is not None
    assert [w for w, _ in res.sweep] == list(SWEEP)
    # the model did what was asked: most of the 16 are sevens to a classifier of real digits
    sevens = int((DigitsClassifier(method="svm").predict(res.final) == 7).sum())
    assert sevens >= 14, sevens
    text = _texts(at)
    for words in ("What it drew", "One picture, opened up", "The guidance knob, turned",
                  "Told the label", "At 0 the label is ignored"):
        assert words in text, words
    assert len(at.get("download_button")) == 2


def test_create_anything_has_no_guidance_or_sweep(user_models_dir):
    at = _page(create_model="digits_cond", create_what="anything", create_steps=5)
    assert at.slider(key="create_guidance").disabled
    at.button(key="create_run").click().run()
    _wait_done(at)
    res = at.session_state["create_job"].result
    assert res.sweep == [] and res.frames[-1].cond is None
    assert "with no label there is only one guess" in _texts(at)
    assert "The guidance knob, turned" not in _texts(at)


def test_request_clamps_widget_values():
    info = find_model("digits_cond")
    assert [m.name for m in create_models()][:4] == ["fashion", "mnist", "doodles",
                                                     "digits_cond"]
    assert what_choices(info) == ["anything", *[str(i) for i in range(10)]]
    # an unknown class falls back to the model's showpiece (a 7), not to a crash
    req = CreateRequest.clamped(info=info, what="cat", guidance=99, steps=-3, sampler="nope",
                                seed=-1)
    assert (req.what, req.label, req.guidance, req.steps, req.sampler, req.seed) == \
        ("7", 7, 10.0, 5, DEFAULT_SAMPLER, 0)
    assert DEFAULT_SAMPLER == "dpmpp_2m"  # one model call per step (see its comment)
    assert req.size == 32
    req = CreateRequest.clamped(info=info, what="4", guidance="2.5")
    assert req.label == 4 and req.guidance == 2.5


@pytest.mark.parametrize("sampler", ["ddim", "dpmpp_2m"])
def test_opened_up_mix_is_the_guided_combination(sampler):
    from diffusion_core.models.registry import load_denoiser

    info = find_model("digits_cond")
    req = CreateRequest.clamped(info=info, what="2", guidance=4, steps=5, sampler=sampler)
    job = req.start(load_denoiser(info))
    assert job.wait(120) and job.state == "done"
    f = job.result.frames[2]
    torch.testing.assert_close(f.x0, f.uncond + 4 * (f.cond - f.uncond))
    assert set(opened_up(job.result, 3, 2)) >= {"cond", "uncond", "mix"}
