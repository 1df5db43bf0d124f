"""kill -9 during a Train-page job loses at most the steps since the last checkpoint, and the
page's Resume brings the run back to the end (bench/train_kill.py runs the full preset)."""

from __future__ import annotations

import pytest
import torch

from bench.train_kill import kill_and_resume
from diffusion_core.jobs import train as tj
from diffusion_core.models import registry
from diffusion_core.training.runs import list_runs


@pytest.mark.system  # kill -9 of a real training process
def test_kill_9_mid_job_then_resume(models_dir):
    # tiny network, 240 steps: a checkpoint every 24 steps (the page's rule: steps // 10)
    r = kill_and_resume(models_dir, "digits", {"size": "tiny", "batch": 8, "steps": 240,
                                               "preview_every": 1000}, kill_at=0.5,
                        name="crashy", timeout_s=300)
    assert r["ckpt_every"] == 24
    assert r["killed_at_step"] >= 120
    # the checkpoint is a whole file at a checkpoint boundary, at most one interval behind
    assert r["checkpoint_step"] % 24 == 0 and r["checkpoint_step"] >= 24
    assert 0 <= r["steps_lost"] <= r["ckpt_every"], r
    # the page lists it as a run to resume, and Resume carries it on from that step to the end
    assert r["listed_as_resumable"]
    assert r["resumed_from"] == r["checkpoint_step"]
    assert r["resumed_state"] == "done" and r["final_step"] == 240, r["error"]
    assert r["steps_after_resume_contiguous"]
    ck = torch.load(models_dir / ".runs" / "crashy" / "checkpoint.pt", weights_only=True)
    assert ck["step"] == 240
    den = registry.load_denoiser("crashy")
    with torch.no_grad():
        assert den(torch.zeros(1, 1, 32, 32), 1.0).shape == (1, 1, 32, 32)
    assert registry.find_model("crashy").card["steps"] == 240


def test_export_cut_between_its_renames_is_recovered(models_dir):
    """A crash after the old model was moved aside but before the new one was moved in
    leaves no model folder; the next listing puts the complete copy back."""
    res = tj.start_training("halfway", "digits", {"size": "tiny", "batch": 4, "steps": 3})
    assert res.ok and res.job.wait(240) and res.job.state == "done", res.job.error
    model_dir, run_dir = models_dir / "halfway", models_dir / ".runs" / "halfway"
    model_dir.rename(run_dir / "staging")
    assert "halfway" not in {m.name for m in registry.list_models()}
    assert [r.name for r in list_runs()] == ["halfway"]
    assert (model_dir / "model.safetensors").is_file() and not (run_dir / "staging").exists()
    registry.load_denoiser("halfway")  # checksum still matches the card
    # a half-written staging folder (no card yet) is never promoted
    model_dir.rename(run_dir / "staging")
    (run_dir / "staging" / "card.json").unlink()
    list_runs()
    assert not model_dir.exists()
