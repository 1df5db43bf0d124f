"""AppTest: the Restore page runs a real (short) restore and a generation to completion."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from streamlit.testing.v1 import AppTest

from diffusion_core.maths.forward import step_for_sigma
from diffusion_core.maths.schedules import make_schedule
from tests.doubles import Failing
from tests.waiting import page_texts, wait_for_page_job

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages/2_Restore.py")


def _wait_done(at, timeout: float = 240.0) -> None:
    """The run happens in a background thread: rerun the page until it shows the result."""
    wait_for_page_job(at, "restore_job", "the restore", timeout)


def _texts(at) -> str:
    return page_texts(at)


def _new_page(**state) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["lab_max_side"] = 128  # working size
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_restore_runs_to_completion_and_shows_metrics(user_models_dir):
    at = _new_page(restore_steps=3)
    assert not at.error, [e.value for e in at.error]
    # the default start: the step whose noise is 25 on the 0-255 scale
    assert at.slider(key="restore_step").value == step_for_sigma(make_schedule("linear"), 2 * 25 / 255)
    at.button[0].click().run()
    assert not at.exception, [e.message for e in at.exception]
    _wait_done(at)
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    labels = {m.label: m.value for m in at.metric}
    assert "Restored PSNR" in labels and "Noisy input PSNR" in labels
    assert labels["Restored PSNR"].endswith("dB")
    job = at.session_state["restore_job"]
    assert job.state == "done" and job.result.steps_run == 3
    assert 10 < job.result.final_metrics["psnr"] < 60
    assert tuple(job.result.final.shape[1:]) == (128, 128)
    text = _texts(at)
    assert "perception–distortion" in text
    assert "Step through the run" in text
    assert len(at.get("plotly_chart")) == 1
    assert len(at.get("download_button")) == 5
    # the scrubber moves through the kept frames without a full rerun failing
    at.select_slider(key=f"restore_frame_{job.id}").set_value(3).run()
    assert not at.exception, [e.message for e in at.exception]
    assert any("Sampler step 3 of 3" in c.value for c in at.caption)


def test_generate_from_pure_noise(user_models_dir):
    at = _new_page(restore_mode="generate", restore_steps=3, restore_gen_size=32)
    assert not at.error, [e.value for e in at.error]
    has_digits = (ROOT / "models" / "digits" / "model.safetensors").exists()
    if not has_digits:  # the photo model stands in and the page says what to expect
        assert any("painterly patchwork" in i.value for i in at.info)
    at.button[0].click().run()
    _wait_done(at)
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    job = at.session_state["restore_job"]
    assert job.state == "done"
    assert job.image is None and job.step == job.schedule.T
    assert "Restored PSNR" not in {m.label for m in at.metric}
    assert len(at.get("download_button")) == 5


def test_bad_model_shows_a_message_not_a_traceback(user_models_dir):
    bad = user_models_dir / "broken"
    bad.mkdir(exist_ok=True)
    (bad / "model.safetensors").write_bytes(b"definitely not safetensors")
    (bad / "card.json").write_text('{"kind": "photo"}')
    try:
        at = _new_page(restore_steps=2, restore_model_restore="broken")
        at.button[0].click().run()
        assert not at.exception, [e.message for e in at.exception]
        assert any("broken" in e.value and "could not be read" in e.value for e in at.error)
        assert "restore_job" not in at.session_state
    finally:
        (bad / "model.safetensors").unlink()
        (bad / "card.json").unlink()
        bad.rmdir()


def test_live_progress_and_stop_keeps_the_partial_result(user_models_dir):
    at = _new_page(restore_steps=400, restore_step=800)
    at.button[0].click().run()
    job = at.session_state["restore_job"]
    deadline = time.time() + 120
    while job.i < 2 and time.time() < deadline:  # let a couple of steps happen
        time.sleep(0.3)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert len(at.get("progress")) == 1
    assert any("what the model thinks" in c for im in at.image for c in im.captions)
    if job.plan.leaves_core:  # (the auto plan leaves a core on 2 or more)
        assert not any("Redrawn every" in c.value for c in at.caption)
    try:
        at.button(key=f"restore_stop_{job.id}").click().run()
        assert job.wait(60)
    finally:
        job.stop()
        job.wait(60)
    _wait_done(at)
    assert not at.exception, [e.message for e in at.exception]
    assert job.state == "stopped" and 2 <= job.result.steps_run < job.n
    assert any("Stopped after" in w.value for w in at.warning)
    assert len(at.get("download_button")) == 5


def test_generate_with_the_photo_model_says_it_invents_textures(user_models_dir):
    at = _new_page(restore_mode="generate", restore_model_generate="natural")
    assert not at.error, [e.value for e in at.error]
    assert any("painterly patchwork" in i.value for i in at.info)


def test_a_failed_run_shows_one_message(user_models_dir):
    from diffusion_core.jobs.restore import RestoreJob

    job = RestoreJob(Failing(), torch.zeros(3, 16, 16), make_schedule("linear"), 57, 3).start()
    assert job.wait(30)
    at = _new_page(restore_job=job)
    assert not at.exception, [e.message for e in at.exception]
    assert [e.value for e in at.error] == [job.error]
    assert "ran out of memory" in job.error


def test_a_run_on_every_core_says_its_live_view_redraws_less_often(user_models_dir, monkeypatch):
    from diffusion_core.system.threads import BUSY_REDRAW_S, ENV_THREADS, available_cores

    monkeypatch.setenv(ENV_THREADS, str(available_cores()))
    at = _new_page(restore_steps=400, restore_step=800)
    at.button[0].click().run()
    job = at.session_state["restore_job"]
    try:
        assert not job.plan.leaves_core
        at.run()
        assert not at.exception, [e.message for e in at.exception]
        assert any(f"Redrawn every {BUSY_REDRAW_S:.0f} s" in c.value for c in at.caption)
    finally:
        job.stop()
        job.wait(60)
