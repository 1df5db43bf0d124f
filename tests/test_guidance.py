"""Class conditioning and classifier-free guidance: the combine in closed form, one batched
model call per step with every sampler, unconditional networks unchanged, and conditional
training (label dropout, fine-tuning from unconditional weights)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from diffusion_core.maths.precond import EDMDenoiser
from diffusion_core.maths.samplers import SPECS, Guided, edm_sigmas, generate, sample
from diffusion_core.models.nets import build_network
from diffusion_core.training.train import TrainConfig, _step_batch, make_batch_source, train

NET = dict(in_channels=1, base=8, mults=[1, 2], blocks=[1, 1], emb_dim=16)


class LabelToy(torch.nn.Module):
    """x0_hat = 0.5 * y + label (no label, -1, gives -2): known in closed form. Counts calls and
    the batch sizes it was called with."""

    def __init__(self):
        super().__init__()
        self.batches: list[int] = []

    def forward(self, y, sigma, class_labels=None):
        self.batches.append(y.shape[0])
        lab = torch.full((y.shape[0],), -1) if class_labels is None else class_labels
        lab = torch.where(lab < 0, -2, lab).to(y.dtype)
        return 0.5 * y + lab.reshape(-1, 1, 1, 1)


@pytest.mark.parametrize("w", [0.0, 1.0, 3.0])
def test_guidance_combine_in_closed_form(w):
    toy = LabelToy()
    x = torch.randn(3, 1, 4, 4)
    out = Guided(toy, [1, 4, 7], w)(x, torch.full((3,), 0.7))
    cond = 0.5 * x + torch.tensor([1.0, 4.0, 7.0]).reshape(-1, 1, 1, 1)
    uncond = 0.5 * x - 2.0
    torch.testing.assert_close(out, uncond + w * (cond - uncond))
    assert toy.batches == ([6] if w == 3.0 else [3])  # one call; both halves only when needed
    g = Guided(toy, 5, w)
    g(x, 0.7)  # one label for the whole batch, a scalar sigma
    assert (g.last_cond is None) == (w == 0.0) and (g.last_uncond is None) == (w == 1.0)
    toy.batches.clear()
    g = Guided(toy, 5, w, both=True)  # both guesses kept at every w, still one call
    out = g(x, 0.7)
    assert toy.batches == [6] and g.last_cond is not None and g.last_uncond is not None
    torch.testing.assert_close(out, g.last_uncond + w * (g.last_cond - g.last_uncond))


@pytest.mark.parametrize("sampler", list(SPECS))
def test_every_sampler_one_batched_call_per_model_call(sampler):
    toy = LabelToy()
    x = torch.randn(2, 1, 4, 4) * 10
    sig = edm_sigmas(5)
    guided = Guided(toy, [3, 8], 2.0)
    sample(sampler, guided, x, sig, generator=torch.Generator().manual_seed(0))
    assert toy.batches == [4] * SPECS[sampler].model_calls(5)


def test_unconditional_network_is_unchanged():
    torch.manual_seed(0)
    net = build_network(NET)
    assert "num_classes" not in net.config and not any("label" in k for k in net.state_dict())
    den = EDMDenoiser(net).eval()
    assert den.num_classes == 0
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        a = den(x, torch.full((2,), 0.5))
        b = den(x, torch.full((2,), 0.5), None)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(ValueError, match="unconditional"):
        den(x, torch.full((2,), 0.5), torch.tensor([1, 2]))


def test_conditional_network_from_unconditional_weights_starts_the_same(tmp_path):
    torch.manual_seed(0)
    plain = build_network(NET)
    for p in plain.parameters():  # non-zero everywhere, so the output depends on the weights
        torch.nn.init.normal_(p, std=0.05)
    cond = build_network({**NET, "num_classes": 10})
    missing, unexpected = cond.load_state_dict(plain.state_dict(), strict=False)
    assert missing == ["label_embed.weight"] and not unexpected
    x = torch.randn(4, 1, 16, 16)
    s = torch.full((4,), 0.8)
    with torch.no_grad():
        ref = EDMDenoiser(plain)(x, s)
        for labels in (None, torch.tensor([0, 3, -1, 9])):
            torch.testing.assert_close(EDMDenoiser(cond)(x, s, labels), ref)
        cond.label_embed.weight.normal_()
        a = EDMDenoiser(cond)(x, s, torch.tensor([0, 0, 0, 0]))
        b = EDMDenoiser(cond)(x, s, torch.tensor([5, 5, 5, 5]))
        none = EDMDenoiser(cond)(x, s, torch.tensor([-1, -1, -1, -1]))
    assert not torch.allclose(a, b)
    torch.testing.assert_close(none, EDMDenoiser(cond)(x, s))  # -1 = None = "no label"
    with pytest.raises(ValueError, match="below 10"):
        cond(x, s, torch.tensor([10, 0, 0, 0]))


def _cfg(**kw) -> TrainConfig:
    base = dict(name="t", kind="digits", net={**NET, "num_classes": 10}, data=[], steps=6,
                batch=8, patch=32, lr=1e-3, lr_warmup=1, ema_decay=0.5, ckpt_every=3,
                log_every=1, eval_every=0, sample_every=0, threads=1, p_focus=0.0, p_gray=0.0)
    base.update(kw)
    return TrainConfig(**base)


def test_label_dropout_share_and_unconditional_draws_kept():
    cfg = _cfg(batch=4000, p_uncond=0.15)
    fn, _ = make_batch_source(cfg, log=lambda *_: None)
    *_, labels = _step_batch(cfg, fn, 0, 0)
    share = float((labels == -1).float().mean())
    assert 0.12 < share < 0.18 and labels.max() == 9
    # an unconditional net's batches are those of before (the dropout draw comes last)
    plain = _cfg(net=dict(NET), batch=16)
    x0, _, sigma, noise, labels = _step_batch(plain, fn, 0, 5)
    cond = _cfg(batch=16)
    x0c, _, sigmac, noisec, labelsc = _step_batch(cond, fn, 0, 5)
    assert torch.equal(x0, x0c) and torch.equal(sigma, sigmac) and torch.equal(noise, noisec)
    assert (labels == -1).all() and (labelsc >= 0).sum() > 8
    with pytest.raises(ValueError, match="labelled"):
        make_batch_source(_cfg(kind="photo", data=["bundled"]), log=lambda *_: None)


def test_conditional_training_smoke_from_unconditional_weights(tmp_path):
    torch.manual_seed(0)
    plain = build_network(NET)
    init = tmp_path / "init.safetensors"
    save_file({k: v.contiguous() for k, v in plain.state_dict().items()}, str(init))
    out = tmp_path / "run"
    summary = train(_cfg(), out, init_weights=init, log=lambda *_: None)
    assert summary["step"] == 6
    card = json.loads((out / "export" / "card.json").read_text())
    assert card["conditional"] and card["classes"][7] == "7" and card["class_words"][7] == "seven"
    assert card["net"]["num_classes"] == 10
    from diffusion_core.models.registry import ModelInfo, load_denoiser

    den = load_denoiser(ModelInfo("t", out / "export", "user", card))
    assert den.num_classes == 10
    # the label embedding was trained: labels now change the prediction
    assert float(den.net.label_embed.weight.abs().sum()) > 0
    pics = generate(Guided(den, torch.arange(4), 3.0), (4, 1, 32, 32), steps=3, sampler="heun")
    assert pics.shape == (4, 1, 32, 32) and torch.isfinite(pics).all()
    # weights of another network are refused, not half loaded
    other = tmp_path / "other.safetensors"
    save_file({"foo": torch.zeros(1)}, str(other))
    with pytest.raises(ValueError, match="does not fit"):
        train(_cfg(), tmp_path / "run2", init_weights=other, log=lambda *_: None)


# ------------------------------------------------------------------ labels and the CLI


@pytest.fixture(scope="module")
def tiny_cond_model(tmp_path_factory):
    """A tiny conditional digits model folder (a few training steps; its card lists classes)."""
    out = tmp_path_factory.mktemp("cond")
    train(_cfg(steps=2), out, log=lambda *_: None)
    return out / "export"


def test_labels_resolve_by_name_word_or_index_and_list_valid_ones():
    from diffusion_core.models.labels import resolve_label, valid_labels

    card = {"name": "m", "classes": [str(i) for i in range(10)],
            "class_words": ["zero", "one", "two", "three", "four", "five", "six", "seven",
                            "eight", "nine"]}
    assert resolve_label(card, "7") == 7 and resolve_label(card, "Seven") == 7
    assert resolve_label(card, None) == -1 and resolve_label(card, "anything") == -1
    assert valid_labels(card)[7] == "7 (seven)" and valid_labels(card)[-1] == "anything"
    with pytest.raises(ValueError, match=r"no class “eleven”.*7 \(seven\)"):
        resolve_label(card, "eleven")
    with pytest.raises(ValueError, match="unconditional"):
        resolve_label({"name": "digits"}, "7")
    assert resolve_label({"net": {"num_classes": 3}}, "2") == 2  # a card without names


def test_cli_generate_grid_and_folder(tiny_cond_model, tmp_path, capsys):
    from PIL import Image

    from diffusion_core.cli import main

    grid = tmp_path / "grid.png"
    assert main(["generate", "--model", str(tiny_cond_model), "--label", "seven",
                 "--guidance", "3", "--n", "4", "--steps", "2", "--out", str(grid)]) == 0
    assert "label 7, guidance 3" in capsys.readouterr().out
    assert Image.open(grid).size == (2 + 2 * 34, 2 + 2 * 34)  # 2x2 grid of 32 px, 2 px gaps
    folder = str(tmp_path / "each") + "/"
    assert main(["generate", "--model", str(tiny_cond_model), "--label", "7", "--n", "3",
                 "--steps", "2", "--out", folder]) == 0
    names = sorted(p.name for p in (tmp_path / "each").iterdir())
    assert names == ["000.png", "001.png", "002.png"]
    assert Image.open(tmp_path / "each" / "001.png").size == (32, 32)
    assert main(["generate", "--model", str(tiny_cond_model), "--list-labels"]) == 0
    assert "7 (seven)" in capsys.readouterr().out


def test_cli_generate_unknown_label_is_a_clear_error(tiny_cond_model, capsys):
    from diffusion_core.cli import main

    code = main(["generate", "--model", str(tiny_cond_model), "--label", "cat", "--n", "1",
                 "--steps", "1", "--out", "/nonexistent/never.png"])
    err = capsys.readouterr().err
    assert code == 2 and "no class “cat”" in err and "0 (zero)" in err and "anything" in err
    code = main(["generate", "--model", "natural", "--label", "7", "--n", "1", "--steps", "1"])
    assert code == 2 and "unconditional" in capsys.readouterr().err


def test_cli_generate_digits_with_a_label_uses_the_conditional_sibling(tmp_path, capsys):
    """The issue's own example: ``--model digits --label 7`` is served by digits_cond, and the
    samples are sevens by the shipped classifier check's standard (here: the model's label
    path was taken, and the grid has the asked size)."""
    from PIL import Image

    from diffusion_core.cli import main
    from diffusion_core.models.labels import labelled_model

    assert labelled_model("digits", {"conditional_variant": "digits_cond"}, "7") == "digits_cond"
    assert labelled_model("digits", {"conditional_variant": "digits_cond"}, "anything") == "digits"
    assert labelled_model("digits", {"conditional_variant": "digits_cond"}, None) == "digits"
    assert labelled_model("x", {"classes": ["a"], "conditional_variant": "y"}, "a") == "x"
    grid = tmp_path / "grid.png"
    assert main(["generate", "--model", "digits", "--label", "7", "--guidance", "3", "--n", "4",
                 "--steps", "2", "--seed", "0", "--out", str(grid)]) == 0
    out = capsys.readouterr().out
    assert "digits_cond" in out and "label 7, guidance 3" in out
    assert Image.open(grid).size == (2 + 2 * 34, 2 + 2 * 34)


def test_cli_generate_help_explains_every_option(capsys):
    from diffusion_core.cli import main

    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = capsys.readouterr().out
    for opt in ("--label", "--guidance", "--list-labels", "--out", "--n", "--steps", "--seed"):
        assert opt in text
    assert "000.png" in text and "sneaker" in text and "seven" in text
    assert "28 for mnist/fashion/doodles" in " ".join(text.split())


def test_conditional_digits_check_writes_its_figures(tiny_cond_model, tmp_path):
    from diffusion_core.cli import main

    out = tmp_path / "cond.json"
    code = main(["evaluate", "digits", "--model", str(tiny_cond_model), "--per-class", "3",
                 "--n", "10", "--steps", "2", "--json", str(out)])
    res = json.loads(out.read_text())
    assert code == 1 and res["summary"]["passes"] is False  # 2 training steps: not a model yet
    assert len(res["asked_share"]["3"]) == 10 and len(res["uncond_histogram"]) == 10
    assert abs(sum(res["uncond_histogram"]) - 1) < 1e-6
    assert res["summary"]["classifier_test_accuracy"] >= 0.97
    assert res["memorisation"]["threshold_median_real_nn"] > 0
    assert 0 <= res["memorisation"]["share_below"] <= 1 and res["summary"]["seconds_per_16"] > 0
    assert "| 3 |" in out.with_suffix(".md").read_text()


def test_label_embedding_learning_rate_multiplier(tmp_path):
    moved = []
    for mult in (1.0, 20.0):
        out = tmp_path / f"m{mult:g}"
        train(_cfg(steps=5, label_lr_mult=mult, ema_decay=0.0), out, log=lambda *_: None)
        ck = torch.load(out / "checkpoint.pt", weights_only=True)
        moved.append(float(ck["net"]["label_embed.weight"].abs().mean()))
        other = [g for g in ck["opt"]["param_groups"] if g.get("lr_mult") == mult]
        assert len(other) == 1 and len(other[0]["params"]) == 1  # the embedding's own group
    assert moved[1] > 10 * moved[0] > 0
