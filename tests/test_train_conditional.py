"""The Train page's "conditional" option: a tiny conditional digits training is a model the
Create page offers and that answers to its labels; a zip with one folder per class gives the
class names and labels; loose pictures train an unconditional model, with a clear note."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import torch
from PIL import Image

from diffusion_core.app.create import CreateRequest, create_models, what_choices
from diffusion_core.app.train import TrainRequest
from diffusion_core.jobs import train as tj
from diffusion_core.media.uploads import class_of, ingest, list_images, read_classes
from diffusion_core.models import registry
from diffusion_core.training.data import PatchSampler, build_sources, folder_classes
from diffusion_core.training.runs import conditional_classes, conditional_note

TINY = {"size": "tiny", "batch": 8, "steps": 8, "preview_every": 4}
TINY_OWN = {"size": "tiny", "batch": 2, "steps": 3, "patch": 32, "preview_every": 3}
SHADES = {"cat": 20, "dog": 235}  # one flat grey per class, so a crop tells its class


def flat_png(value: int, size: int = 40) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def zip_of(entries: list[tuple[str, bytes]]) -> tuple[str, bytes]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return ("pictures.zip", buf.getvalue())


def labelled_zip() -> tuple[str, bytes]:
    return zip_of([("pets/cat/a.png", flat_png(SHADES["cat"])),
                   ("pets/cat/b.png", flat_png(SHADES["cat"] + 1)),
                   ("pets/dog/c.png", flat_png(SHADES["dog"])),
                   ("pets/dog/notes.txt", b"not a picture"),
                   ("loose.png", flat_png(128))])


def test_conditional_digits_job_is_offered_by_create_and_answers_labels(models_dir):
    res = tj.start_training("cond-digits", "digits", TINY, conditional=True)
    assert res.ok, res.message
    assert res.job.wait(240) and res.job.state == "done", res.job.error
    card = res.job.snapshot()["card"]
    assert card["classes"] == [str(i) for i in range(10)] and card["class_words"][7] == "seven"
    assert card["net"]["num_classes"] == 10 and card["config"]["p_uncond"] > 0
    info = next(m for m in registry.list_models() if m.name == "cond-digits")
    assert info.source == "user" and info.card["net"]["num_classes"] == 10
    # the Create page's model menu offers it at once, with its classes
    offered = [m for m in create_models() if m.name == "cond-digits"]
    assert offered and "7" in what_choices(offered[0])
    assert CreateRequest.clamped(info=offered[0], what="7").label == 7
    den = registry.load_denoiser(info)
    x = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        seven = den(x, 1.0, torch.tensor([7, 7]))
        three = den(x, 1.0, torch.tensor([3, 3]))
        none = den(x, 1.0, torch.tensor([-1, -1]))
    assert (seven - three).abs().max() > 1e-6 and (seven - none).abs().max() > 1e-6
    # an unticked box trains an unconditional model, which the Create page does not offer
    res = tj.start_training("plain-digits", "digits", TINY)
    assert res.job.wait(240) and res.job.state == "done", res.job.error
    plain = res.job.snapshot()["card"]
    assert "classes" not in plain and "num_classes" not in plain["net"]
    assert "plain-digits" not in {m.name for m in create_models()}


def test_labelled_zip_gives_class_names_and_labels(tmp_path):
    folder = tmp_path / "up"
    rep = ingest([labelled_zip()], folder)
    assert rep.accepted == 4 and rep.classes == {"cat": 2, "dog": 1}
    assert "2 classes" in rep.message() and "cat ×2" in rep.message()
    # class names are labels only: every picture sits directly in the folder
    assert all(p.parent == folder for p in folder.rglob("*"))
    recorded = read_classes(folder)
    assert sorted(recorded.values()) == ["cat", "cat", "dog"]
    names, labels = folder_classes(folder)
    assert names == ["cat", "dog"] and sorted(labels.values()) == [-1, 0, 0, 1]
    assert conditional_classes("own", folder) == ["cat", "dog"]
    assert "cat, dog" in conditional_note("own", folder)
    req = TrainRequest("own", "own", "pets", {}, data_folder=folder, conditional=True)
    assert req.classes == ["cat", "dog"]
    # a training batch carries each crop's label: its shade says which class it came from
    src = build_sources([f"folder:{folder}"])
    x, gray, lab = PatchSampler(src, 16, p_gray=0.0).batch(64, torch.Generator().manual_seed(1))
    shade = ((x.mean((1, 2, 3)) + 1) * 127.5).round()
    want = torch.where(shade < 60, 0, torch.where(shade > 200, 1, -1))
    assert torch.equal(lab, want) and set(lab.tolist()) == {-1, 0, 1}


def test_class_names_come_from_member_names_only():
    assert class_of("pets/cat/a.png") == "cat" and class_of("dog\\b.png") == "dog"
    assert class_of("a.png") is None and class_of("/a.png") is None
    assert class_of("x/../b.png") is None and class_of("./b.png") is None
    assert class_of("ca\x00t/b.png") == "ca?t" and len(class_of("d" * 300 + "/b.png")) == 40


def test_zip_without_folders_trains_unconditionally(models_dir, tmp_path):
    folder = tmp_path / "up"
    rep = ingest([zip_of([(f"{i}.png", flat_png(40 * i)) for i in range(1, 5)])], folder)
    assert rep.accepted == 4 and rep.classes == {} and read_classes(folder) == {}
    req = TrainRequest("own", "own", "flat", TINY_OWN, data_folder=folder, conditional=True)
    assert req.classes == [] and "not sorted into folders" in req.conditional_note
    res = req.start()
    assert res.ok, res.message
    assert res.job.wait(240) and res.job.state == "done", res.job.error
    card = res.job.snapshot()["card"]
    assert "classes" not in card and "num_classes" not in card["net"]
    assert len(list_images(models_dir / ".runs" / "flat" / "data")) == 4
    assert "flat" not in {m.name for m in create_models()}


def test_labelled_zip_trains_a_conditional_model_with_its_class_names(models_dir, tmp_path):
    folder = tmp_path / "up"
    ingest([labelled_zip()], folder)
    req = TrainRequest("own", "own", "pets", TINY_OWN, data_folder=folder, conditional=True)
    res = req.start()
    assert res.ok, res.message
    assert res.job.wait(240) and res.job.state == "done", res.job.error
    card = res.job.snapshot()["card"]
    assert card["classes"] == ["cat", "dog"] and card["net"]["num_classes"] == 2
    offered = [m for m in create_models() if m.name == "pets"]
    assert offered and what_choices(offered[0])[1:] == ["cat", "dog"]
    assert CreateRequest.clamped(info=offered[0], what="dog").label == 1
