"""AppTest: the Train page trains a tiny digits model to completion; it is then a model every
page can pick."""

from __future__ import annotations

import io
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

from diffusion_core.app.create import create_models
from diffusion_core.jobs import train as tj
from diffusion_core.models import registry

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages/4_Train.py")


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [s.value for s in at.success] + [i.value for i in at.info]
    return "\n".join(str(p) for p in parts)


def test_train_page_runs_a_tiny_digits_training(monkeypatch, tmp_path):
    monkeypatch.setenv("DIFFUSION_LAB_USER_MODELS", str(tmp_path / "models"))
    at = AppTest.from_file(PAGE, default_timeout=240)
    at.run()
    _ok(at)
    assert not at.error, [e.value for e in at.error]
    assert "1,797 pictures" in _texts(at)  # the grid of what it will learn from
    assert at.radio(key="train_preset").value == "digits"
    # advanced settings: a tiny network and 20 steps (out-of-range input is clamped)
    at.selectbox(key="train_size").set_value("tiny")
    at.number_input(key="train_steps").set_value(20)
    at.number_input(key="train_batch").set_value(8)
    at.number_input(key="train_preview_every").set_value(10)
    at.text_input(key="train_name").input("page test")
    at.run()
    _ok(at)
    assert "It will be saved as **page-test**" in _texts(at)
    at.button(key="train_start").click().run()
    _ok(at)
    assert not at.error, [e.value for e in at.error]
    job = tj.current_job()
    assert job is not None and job.name == "page-test" and job.total == 20
    assert at.button(key="train_stop").disabled is False
    deadline = time.time() + 240
    saw_progress = False
    while not job.done and time.time() < deadline:
        time.sleep(0.5)
        at.run()
        _ok(at)
        saw_progress |= any("Step " in str(p.proto) for p in at.get("progress"))
    assert job.wait(60) and job.state == "done", job.error
    at.run()
    _ok(at)
    assert saw_progress or job.step == 20
    success = " ".join(s.value for s in at.success)
    assert "Your model **page-test** is saved; pick it on the Restore page." in success
    assert len(at.get("plotly_chart")) == 1  # the loss curve
    assert any("16 pictures the model draws" in c for i in at.image for c in i.captions)
    # the model is at once in the registry, i.e. on the Restore page's list
    names = {m.name: m for m in registry.list_models()}
    assert "page-test" in names and names["page-test"].source == "user"
    assert names["page-test"].card["steps"] == 20
    registry.load_denoiser(names["page-test"])
    # a fresh visit re-attaches to the (finished) job and offers to train it longer
    at2 = AppTest.from_file(PAGE, default_timeout=240)
    at2.session_state["train_name"] = "page-test"
    at2.run()
    _ok(at2)
    assert at2.button(key="train_resume").label == "▶ Train longer"


def _png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_own_pictures_upload_errors_and_grid(monkeypatch, tmp_path):
    monkeypatch.setenv("DIFFUSION_LAB_USER_MODELS", str(tmp_path / "models"))
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["train_dataset"] = "own"
    at.run()
    _ok(at)
    assert any("No pictures yet" in i.value for i in at.info)
    assert at.button(key="train_start").disabled  # nothing to train on yet
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("../../escape.png", _png(1))
        zf.writestr("notes.txt", b"hello")
    at.file_uploader[0].set_value([
        ("a.png", _png(2), "image/png"),
        ("pics.zip", zipped.getvalue(), "application/zip"),
        ("broken.zip", b"PK not really", "application/zip"),
        ("fake.jpg", b"not a picture at all", "image/jpeg"),
    ]).run()
    _ok(at)
    errors = " ".join(e.value for e in at.error)
    assert "broken.zip" in errors and "not a readable zip" in errors
    assert any("2 pictures added, 2 files skipped" in s.value for s in at.success)
    assert "2 pictures:" in _texts(at)
    assert not at.button(key="train_start").disabled
    written = [p for p in (tmp_path).rglob("*") if p.is_file()]
    assert len(written) == 2 and all(p.name.startswith("img_") for p in written)
    # the photos + synthetic set draws its grid too
    at.radio(key="train_dataset").set_value("photos").run()
    _ok(at)
    assert "dead leaves" in _texts(at)


def test_another_running_job_is_shown_and_blocks_start(monkeypatch, tmp_path):
    monkeypatch.setenv("DIFFUSION_LAB_USER_MODELS", str(tmp_path / "models"))
    reached, release = threading.Event(), threading.Event()
    orig = tj.TrainingJob._on_step

    def gated(self, info):
        orig(self, info)
        if info.step == 2:
            reached.set()
            release.wait(60)

    monkeypatch.setattr(tj.TrainingJob, "_on_step", gated)
    res = tj.start_training("someone-else", "digits", {"size": "tiny", "steps": 5, "batch": 4})
    assert res.ok, res.message
    try:
        assert reached.wait(240)
        at = AppTest.from_file(PAGE, default_timeout=120)
        at.run()
        _ok(at)
        assert any("Another training job is running" in w.value and "someone-else" in w.value
                   for w in at.warning)
        assert at.button(key="train_start").disabled
        assert not at.button(key="train_stop").disabled
        assert any(h.value == "Training “someone-else”" for h in at.header)  # re-attached
    finally:
        release.set()
        assert res.job.wait(120) and res.job.state == "done", res.job.error


def test_conditional_option_trains_a_model_for_the_create_page(monkeypatch, tmp_path):
    monkeypatch.setenv("DIFFUSION_LAB_USER_MODELS", str(tmp_path / "models"))
    at = AppTest.from_file(PAGE, default_timeout=240)
    at.run()
    _ok(at)
    assert at.checkbox(key="train_conditional").value is False
    at.checkbox(key="train_conditional").check()
    at.selectbox(key="train_size").set_value("tiny")
    at.number_input(key="train_steps").set_value(10)
    at.number_input(key="train_batch").set_value(8)
    at.text_input(key="train_name").input("cond page")
    at.run()
    _ok(at)
    assert any("(0 to 9)" in i.value for i in at.info)
    at.button(key="train_start").click().run()
    _ok(at)
    job = tj.current_job()
    assert job is not None and job.name == "cond-page"
    assert job.wait(240) and job.state == "done", job.error
    at.run()
    _ok(at)
    success = " ".join(s.value for s in at.success)
    assert "ask it for a class on the Create page" in success
    assert "**Classes:** 0, 1, 2, 3, 4, 5, 6, 7, 8, 9" in _texts(at)
    assert "cond-page" in {m.name for m in create_models()}
    # own pictures: loose files give a clear warning, a zip of class folders lists them
    at.radio(key="train_dataset").set_value("own").run()
    at.file_uploader[0].set_value([("a.png", _png(1), "image/png")]).run()
    _ok(at)
    assert any("not sorted into folders" in w.value for w in at.warning)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("cats/1.png", _png(2))
        zf.writestr("dogs/2.png", _png(3))
    at.file_uploader[0].set_value([("a.png", _png(1), "image/png"),
                                   ("pets.zip", zipped.getvalue(), "application/zip")]).run()
    _ok(at)
    assert any("2 classes" in s.value for s in at.success)
    assert any("cats, dogs" in i.value for i in at.info)
