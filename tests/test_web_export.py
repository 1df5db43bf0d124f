"""The browser's copy of each conditional model (web/app/models/<name>/): the exported ONNX file
gives the torch model's numbers (max |difference| <= 1e-4), it is self-contained, batch 2 and
fixed size, its JSON describes it, and it was made from the model's current weights.
Needs onnx and onnxruntime (requirements-dev.txt)."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_core.browser.export import (
    BATCH,
    JSON_FILE,
    MODELS_DIR,
    ONNX_FILE,
    check_inputs,
    conditional_models,
    exported_models,
    model_side,
    read_export,
    torch_reference,
)
from diffusion_core.maths.samplers import edm_sigmas
from diffusion_core.models.labels import class_names
from diffusion_core.models.registry import find_model, load_denoiser, sha256_file

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

ROOT = Path(__file__).resolve().parent.parent
EXPORTED = exported_models()
TOLERANCE = 1e-4
REEXPORT = "re-export it: python -m diffusion_core export-web --model {}"


def _session(path: Path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def test_every_shipped_conditional_model_has_a_browser_copy():
    missing = {m.name for m in conditional_models()} - set(EXPORTED)
    assert not missing, f"no browser copy of {sorted(missing)}: python -m diffusion_core export-web --all"
    assert {"mnist", "fashion", "doodles", "digits_cond"} <= set(EXPORTED)


@pytest.mark.parametrize("name", EXPORTED)
def test_browser_copy_is_made_from_the_current_weights(name):
    data = read_export(name)
    info = find_model(name)
    assert data["weights_sha256"] == sha256_file(info.path / "model.safetensors"), REEXPORT.format(name)
    assert data["onnx"]["sha256"] == sha256_file(MODELS_DIR / name / ONNX_FILE)


@pytest.mark.parametrize("name", EXPORTED)
def test_onnx_gives_the_torch_models_numbers(name):
    """Fixed inputs at noise levels from 80 to 0.002, every class told and untold (-1 and
    num_classes both mean no label): max |ONNX - torch| <= 1e-4."""
    info = find_model(name)
    den = load_denoiser(info, "cpu")
    sess = _session(MODELS_DIR / name / ONNX_FILE)
    side, c, k = model_side(info), den.channels, den.num_classes
    worst = 0.0
    cases = list(check_inputs(c, side, k))
    g = torch.Generator().manual_seed(7)
    for label in range(k):  # every class once, at a mid noise level, beside "no label"
        x = (torch.rand((BATCH, c, side, side), generator=g) * 2 - 1
             + 0.8 * torch.randn((BATCH, c, side, side), generator=g))
        cases.append((x.float(), torch.tensor([0.8, 0.8]), torch.tensor([label, -1])))
    for x, sigma, label in cases:
        out = sess.run(None, {"x": x.numpy(), "sigma": sigma.numpy(), "label": label.numpy()})[0]
        ref = torch_reference(den, x, sigma, label)
        assert out.shape == ref.shape == (BATCH, c, side, side)
        worst = max(worst, float(np.abs(out - ref).max()))
    assert worst <= TOLERANCE, f"{name}: max |ONNX - torch| = {worst:.2e}"
    # the two "no label" spellings are the same request
    x = cases[0][0].numpy()
    s = np.array([2.0, 2.0], np.float32)
    a = sess.run(None, {"x": x, "sigma": s, "label": np.array([-1, -1])})[0]
    b = sess.run(None, {"x": x, "sigma": s, "label": np.array([k, k])})[0]
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", EXPORTED)
def test_onnx_is_one_self_contained_batch2_file(name):
    folder = MODELS_DIR / name
    assert sorted(p.name for p in folder.iterdir()) == sorted([ONNX_FILE, JSON_FILE])
    m = onnx.load(str(folder / ONNX_FILE), load_external_data=False)
    onnx.checker.check_model(m)
    assert m.graph.initializer, "the weights are inside the file"
    for t in m.graph.initializer:
        assert t.data_location != onnx.TensorProto.EXTERNAL, f"{t.name} is external data"
    dims = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in m.graph.input}
    side = read_export(name)["size"]
    assert dims == {"x": [2, 1, side, side], "sigma": [2], "label": [2]}
    assert [o.name for o in m.graph.output] == ["x0"]
    assert {o.version for o in m.opset_import if o.domain in ("", "ai.onnx")} == {18}
    size_mb = (folder / ONNX_FILE).stat().st_size / 1e6
    assert 2.0 < size_mb < 4.0  # fp32 weights (657,604 parameters) and the graph


@pytest.mark.parametrize("name", EXPORTED)
def test_json_holds_the_schedule_classes_and_examples(name):
    data = read_export(name)
    info = find_model(name)
    assert data["classes"] == class_names(info.card)
    assert data["num_classes"] == len(data["classes"])
    assert data["size"] == model_side(info)
    sch = data["schedule"]
    assert (sch["sigma_min"], sch["sigma_max"], sch["rho"]) == (0.002, 80.0, 7.0)
    assert sch["check_sigmas"] == edm_sigmas(sch["check_steps"]).tolist()
    ex = data["examples"]
    assert ex is not None, "every shipped world has a class example strip"
    png = base64.b64decode(ex["png"].split(",", 1)[1])
    strip = Image.open(io.BytesIO(png))
    assert strip.size == (ex["tile"] * data["num_classes"], ex["tile"])
    assert np.asarray(strip).std() > 10  # pictures, not a blank strip
    assert data["check"]["max_abs_diff"] <= TOLERANCE
    for alias, cls in data["aliases"].items():
        assert alias == alias.lower() and cls in data["classes"]


@pytest.mark.system
def test_export_web_command(tmp_path):
    """The command writes both files for a model and measures the ONNX file against torch;
    an unconditional model is refused in one line (exit status 2)."""
    env_py = [sys.executable, "-m", "diffusion_core"]
    p = subprocess.run([*env_py, "export-web", "--model", "doodles", "--out", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "max |ONNX - torch|" in p.stdout
    data = json.loads((tmp_path / "doodles" / JSON_FILE).read_text())
    assert data["check"]["max_abs_diff"] <= TOLERANCE
    assert data["onnx"]["sha256"] == sha256_file(tmp_path / "doodles" / ONNX_FILE)
    assert "Traceback" not in p.stderr
    bad = subprocess.run([*env_py, "export-web", "--model", "digits", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2
    assert "unconditional" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "digits").exists()
