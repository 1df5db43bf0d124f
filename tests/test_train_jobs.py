"""The background training job behind the Train page (tiny network, a few digits steps)."""

from __future__ import annotations

import io
import json
import threading

import numpy as np
import torch
from PIL import Image

from diffusion_core.jobs import train as tj
from diffusion_core.media.uploads import ingest
from diffusion_core.models import registry
from diffusion_core.training import presets, runs
from diffusion_core.training.previews import dataset_preview

TINY = {"size": "tiny", "batch": 8, "steps": 10, "preview_every": 5}


def test_tiny_job_reports_progress_and_saves_a_loadable_model(models_dir, tmp_path):
    res = tj.start_training("My digits!", "digits", TINY)
    assert res.ok, res.message
    job = res.job
    assert job.name == "My-digits" and tj.current_job() is job
    assert job.wait(240) and job.state == "done", job.error
    snap = job.snapshot()
    assert snap["step"] == snap["total"] == 10
    assert [s for s, _ in job.losses] == list(range(1, 11))  # the callback fired every step
    assert snap["curve_steps"] and all(v > 0 for v in snap["curve_loss"])
    assert snap["preview"] is not None and snap["preview_step"] == 10
    assert snap["device"] and snap["steps_per_s"] > 0
    # the EMA weights + card are a model every page can pick at once
    info = next(m for m in registry.list_models() if m.name == "My-digits")
    assert info.source == "user" and info.kind == "digits"
    card = snap["card"]
    assert card["steps"] == 10 and card["final_loss"] > 0 and card["wall_time_s"] >= 0
    assert "handwritten digits" in card["data"] and card["preset"] == "digits"
    den = registry.load_denoiser(info)
    with torch.no_grad():
        assert den(torch.zeros(2, 1, 32, 32), 1.0).shape == (2, 1, 32, 32)
    # nothing outside the user-model folder
    assert {p for p in tmp_path.rglob("*") if p.is_file()} == \
        {p for p in models_dir.rglob("*") if p.is_file()}
    assert (models_dir / ".runs" / "My-digits" / "checkpoint.pt").exists()


def test_stop_checkpoints_and_resume_continues_the_step_count(models_dir, monkeypatch):
    reached, release = threading.Event(), threading.Event()
    orig = tj.TrainingJob._on_step

    def gated(self, info):
        orig(self, info)
        if info.step == 3 and not self.resume:
            reached.set()
            release.wait(60)

    monkeypatch.setattr(tj.TrainingJob, "_on_step", gated)
    res = tj.start_training("stopper", "digits", dict(TINY, steps=12))
    assert res.ok, res.message
    job = res.job
    assert reached.wait(240), job.error
    # one job at a time: a second start (or a resume) is refused while it runs
    second = tj.start_training("other", "digits", TINY)
    assert not second.ok and "training job is running" in second.message
    assert "wait" in second.message and "stop" in second.message and second.job is job
    assert not tj.resume_training("stopper").ok
    assert tj.stop_training()
    release.set()
    assert job.wait(120) and job.state == "stopped", job.error
    run_dir = models_dir / ".runs" / "stopper"
    ck = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert ck["step"] == 3 == job.step
    card = json.loads((models_dir / "stopper" / "card.json").read_text())
    assert card["steps"] == 3 and card["stopped_early"] is True
    assert [r.name for r in runs.list_runs()] == ["stopper"] and not runs.list_runs()[0].finished

    res = tj.resume_training("stopper")
    assert res.ok, res.message
    job2 = res.job
    assert job2.start_step == 3
    assert job2.wait(240) and job2.state == "done", job2.error
    assert job2.step == 12 and [s for s, _ in job2.losses][-9:] == list(range(4, 13))
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["step"] == 12
    card = json.loads((models_dir / "stopper" / "card.json").read_text())
    assert card["steps"] == 12 and card["stopped_early"] is False
    registry.load_denoiser("stopper")
    # finished: resuming needs more steps
    assert not tj.resume_training("stopper").ok
    assert "already finished" in tj.resume_training("stopper").message


def test_names_and_clamped_settings(models_dir):
    assert not tj.start_training("digits", "digits", TINY).ok  # a shipped model's name
    (models_dir / "taken").mkdir(parents=True)
    res = tj.start_training("taken", "digits", TINY)
    assert not res.ok and "already exists" in res.message
    assert not tj.start_training("pics", "own", TINY, data_folder=models_dir / "none").ok
    s = presets.effective_settings("digits", {"steps": 10**9, "batch": -5, "lr": "nan",
                                         "size": "huge", "schedule": "x", "preview_every": 0})
    assert s["steps"] == presets.LIMITS["steps"][1] and s["batch"] == 1
    assert s["lr"] == presets.PRESETS["digits"].config["lr"] and s["size"] == "small"
    assert s["preview_every"] == presets.LIMITS["preview_every"][0]
    cfg = presets.build_config("x", "digits", {"size": "tiny", "steps": 10})
    assert cfg.net["in_channels"] == 1 and cfg.net["base"] == 8 and cfg.steps == 10


def test_own_pictures_job_copies_the_data_and_saves_a_photo_model(models_dir):
    rng = np.random.default_rng(0)
    files = []
    for i in range(3):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(buf, "PNG")
        files.append((f"p{i}.png", buf.getvalue()))
    upload = runs.uploads_dir() / "session1"
    assert ingest(files, upload).accepted == 3
    pics, n = dataset_preview("own", upload, n=8, side=32)
    assert n == 3 and pics.shape == (3, 3, 32, 32)
    res = tj.start_training("mine", "own", dict(TINY, steps=4, patch=32, preview_every=2),
                            data_folder=upload)
    assert res.ok, res.message
    assert res.job.wait(240) and res.job.state == "done", res.job.error
    assert len(list((models_dir / ".runs" / "mine" / "data").glob("*.png"))) == 3
    info = next(m for m in registry.list_models() if m.name == "mine")
    assert info.kind == "photo" and info.channels == 3
    assert info.card["data"] == "3 of your own pictures"
    assert res.job.snapshot()["preview"] is not None  # noisy crops above their clean-up
