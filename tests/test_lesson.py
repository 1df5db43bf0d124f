"""The Lesson page's library: the scenes and their words, ``?scene=N``, the live runs sized
to the measured speed, the SVG visuals, and the warm-up that computes the scenes ahead."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch

from diffusion_core.app import lesson
from diffusion_core.app.estimate import create_estimate, restore_estimate
from diffusion_core.app.lesson_figures import (
    Panel,
    Tile,
    bars_under,
    bell_figure,
    message_figure,
    pictures_figure,
    replay_figure,
    scatter_figure,
)
from diffusion_core.jobs.timing import Speed
from diffusion_core.models.registry import list_models
from tests.doubles import GaussianDenoiser
from tests.waiting import until

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("viewBox")
    return root


def speed(per_pixel_s: float) -> Speed:
    """A computer whose denoiser call costs ``per_pixel_s`` a pixel (plus 2 ms)."""
    pts = tuple((px, 0.002 + per_pixel_s * px) for px in (4096, 65536, 262144))
    return Speed("CPU (test)", 1, pts, ((49152, 0.002), (786432, 0.03)))


# ---------------------------------------------------------------------- the scenes


def test_eight_scenes_each_with_short_words_notes_and_alt_text():
    assert len(lesson.SCENES) == lesson.N_SCENES == 8
    assert len({s.key for s in lesson.SCENES}) == 8
    for scene in lesson.SCENES:
        words = lesson.scene_words(scene, None)
        assert 1 <= lesson.sentences(words) <= 2, (scene.key, words)
        assert len(words) <= 200, (scene.key, len(words))
        assert "{" not in words
        assert scene.notes.strip() and scene.alt.strip() and scene.title.strip()
        assert scene.control in (None, "slider", "step", "again", "new", "guidance")
    assert [s.live for s in lesson.SCENES].count(True) == 2  # the restore and the drawing


def test_sentence_counter():
    assert lesson.sentences("One. Two!") == 2
    assert lesson.sentences("A 0.5 value, then one end.") == 1
    assert lesson.sentences("No end") == 0


@pytest.mark.parametrize("raw, index", [(None, 0), ("1", 0), ("3", 2), ("8", 7), (" 5 ", 4),
                                        (["4"], 3), ([], 0)])
def test_scene_query_parameter(raw, index):
    assert lesson.scene_index(raw) == (index, None)


@pytest.mark.parametrize("raw", ["0", "9", "12", "-1", "2.5", "abc", "", "<b>x</b>",
                                 "1" * 40, "１"])
def test_a_bad_scene_number_gives_scene_one_and_a_short_message(raw):
    index, message = lesson.scene_index(raw)
    assert index == 0
    assert message and "1 to 8" in message and "scene 1" in message
    assert len(message) < 120  # long input is cut


def test_the_gan_sentence_comes_from_the_comparison():
    class Metrics:
        def __init__(self, covered):
            self.modes_covered, self.n_modes = covered, 8

    class Prep:
        models = None

        def part(self, name):
            return {"metrics": {"gan": Metrics(2), "diffusion": Metrics(8)}} if name == "gan" else None

    gan = next(s for s in lesson.SCENES if s.key == "gan")
    words = lesson.scene_words(gan, Prep())
    assert "The GAN found 2 of them; diffusion all of them, sharply." in words
    assert lesson.sentences(words) == 2


# ---------------------------------------------------------------------- live runs, sized


def test_live_restore_is_sized_to_the_budget_on_the_measured_speed():
    fast, slow = speed(2e-8), speed(1e-5)
    rich = lesson.restore_plan(fast, aspect=2 / 3)
    assert (rich.side, rich.steps) == lesson.RESTORE_LADDER[0]
    small = lesson.restore_plan(slow, aspect=2 / 3)
    assert small.side < rich.side and small.seconds <= lesson.LIVE_BUDGET_S
    # the estimate is the one the other pages use, for the shape the run will have
    h, w = round(small.side * 2 / 3), small.side
    assert small.seconds == pytest.approx(restore_estimate(
        slow, (3, h, w), small.start_step, small.steps, lesson.RESTORE_SAMPLER, True).seconds)
    unknown = lesson.restore_plan(None)
    assert (unknown.side, unknown.steps) == lesson.RESTORE_LADDER[-1] and unknown.seconds is None
    very_slow = lesson.restore_plan(speed(1e-3))  # nothing fits: the cheapest rung
    assert (very_slow.side, very_slow.steps) == lesson.RESTORE_LADDER[-1]


def test_live_drawing_is_sized_to_the_budget():
    info = lesson.lesson_create_model()
    if info is None:
        pytest.skip("no drawing model installed")
    assert lesson.create_plan(speed(1e-9), info) == lesson.CREATE_LADDER[0]
    steps = lesson.create_plan(speed(3e-6), info)
    side = lesson.model_side(info)
    fits = create_estimate(speed(3e-6), lesson.CREATE_N, side, steps, lesson.CREATE_SAMPLER, False)
    assert fits.seconds <= lesson.LIVE_BUDGET_S or steps == lesson.CREATE_LADDER[-1]
    assert lesson.create_plan(None, info) == lesson.CREATE_LADDER[-1]


def test_model_side_reads_the_card():
    class Info:
        def __init__(self, card):
            self.card = card

    assert lesson.model_side(Info({"size": 28})) == 28
    assert lesson.model_side(Info({})) == 32
    assert lesson.model_side(Info({"size": "nonsense"})) == 32


def test_live_restore_runs_and_draws_its_start_progress_and_end():
    photo = torch.rand(3, 40, 60) * 2 - 1
    plan = lesson.RestorePlan(side=48, steps=4, start_step=200, seconds=None)
    job = lesson.start_restore(GaussianDenoiser(), photo, plan, "cpu", settings={"entry": 3})
    before = lesson.restore_figure(job, {"latest": None})
    assert len(parse(before).findall(f"{SVG}image")) == 4
    assert job.wait(60) and job.state == "done", job.error
    assert job.image.shape == (3, 32, 48) and job.settings["entry"] == 3
    done = parse(lesson.restore_figure(job))
    texts = [t.text for t in done.iter(f"{SVG}text")]
    assert "after 4 steps" in texts and "the original" in texts
    assert lesson.live_status(job).startswith("Done live: 4 steps in")


def test_live_drawing_plays_its_steps_back_and_ends_on_the_pictures():
    class Info:
        name, card = "test", {"size": 12}

    job = lesson.start_create(GaussianDenoiser(), Info(), steps=5, seed=1, device="cpu")
    assert job.wait(60) and job.state == "done", job.error
    root = parse(lesson.create_figure(job))
    groups = root.findall(f"{SVG}g")
    assert len(groups) == 5  # every step (at most REPLAY_FRAMES), the last = the finished grid
    assert groups[0].get("visibility") == "visible"
    assert all(g.get("visibility") == "hidden" for g in groups[1:])
    last_sets = groups[-1].findall(f"{SVG}set")
    assert [s.get("to") for s in last_sets] == ["visible"]  # the last frame stays
    assert "finished: 5 steps" in [t.text for t in groups[-1].iter(f"{SVG}text")]
    assert "played back" in lesson.live_status(job)


# ---------------------------------------------------------------------- figures


def test_pictures_figure_lays_out_rows_with_escaped_captions():
    a = np.zeros((20, 30, 3), np.uint8)
    svg = pictures_figure([[Tile(a, "one <b>"), Tile(a, "two & three")], [Tile(a)]],
                          row_labels=("top", "bottom"), title="A title")
    root = parse(svg)
    assert len(root.findall(f"{SVG}image")) == 3
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "one <b>" in texts and "two & three" in texts and "A title" in texts
    assert "<b>" not in svg.replace("&lt;b&gt;", "")
    # a tall single grid makes a narrow canvas (so that it fills a screen's height)
    tall = parse(pictures_figure([[Tile(np.zeros((100, 100), np.uint8), "x")]]))
    w, h = (float(v) for v in tall.get("viewBox").split()[2:])
    assert w < h


def test_bell_figure_draws_the_histogram_and_the_bell_curve():
    x = torch.randn(3, 32, 32)
    from diffusion_core.media.viz import histogram

    centres, dens = histogram(x)
    root = parse(bell_figure(Tile(np.zeros((32, 32, 3), np.uint8), "step 1000"), centres, dens,
                             "pixel values"))
    assert len(root.findall(f"{SVG}rect")) > 20
    assert len(root.findall(f"{SVG}polyline")) == 1


def test_scatter_figure_keeps_points_inside_their_panels():
    data = np.random.default_rng(0).normal(size=(500, 2))
    far = np.array([[100.0, 100.0], [0.0, 0.0]])
    root = parse(scatter_figure(data, [Panel("GAN", far, "#d62728", "found 1 of 8"),
                                       Panel("Diffusion", data, "#2ca02c")],
                                ([-6, 6], [-6, 6])))
    circles = root.findall(f"{SVG}circle")
    assert len(circles) == 2 * 500 + 1 + 500  # the far-away sample is left out


def test_bars_and_messages():
    a = np.zeros((10, 10), np.uint8)
    root = parse(bars_under([Tile(a, "1 step"), Tile(a, "2 steps")], [0.1, 0.2],
                            ["0.10 s", "0.20 s"], "title", "seconds"))
    bars = [r for r in root.findall(f"{SVG}rect") if r.get("fill") != "#ffffff"]
    assert float(bars[1].get("height")) == pytest.approx(2 * float(bars[0].get("height")))
    card = parse(message_figure(["Getting this scene ready", "a moment"]))
    assert [t.text for t in card.iter(f"{SVG}text")] == ["Getting this scene ready", "a moment"]
    one = parse(replay_figure([Tile(a)], ["finished"]))
    assert not one.findall(f"{SVG}g")  # one frame: nothing to play


# ---------------------------------------------------------------------- the warm-up


def test_the_warm_up_computes_every_scene_ahead():
    prep = lesson.LessonPrep("cpu", toy2d_steps=40).start()
    assert prep.wait(300) and prep.state == "done", prep.error
    assert not prep.problems, prep.problems
    assert prep.all_ready
    assert set(prep.part("bell")) == set(lesson.BELL_STEPS)
    parse(prep.part("guesses"))
    steer = prep.part("steer")
    assert set(steer["figures"]) == {float(w) for w in lesson.STEER_WS}
    assert len({svg for svg in steer["figures"].values()}) == len(lesson.STEER_WS)
    cost = prep.part("cost")
    assert len(cost["seconds"]) == len(lesson.COST_STEPS)
    assert cost["seconds"][-1] > cost["seconds"][0]  # 32 steps cost more than 1
    gan = prep.part("gan")
    assert set(gan["metrics"]) == set(lesson.TOY2D_KINDS)
    parse(lesson.gan_svg(prep))
    speeds = prep.part("speeds")
    assert speeds["restore"] is not None and speeds["restore"].call_s(256 * 256) > 0
    assert prep.slots is None and prep.compare.slots is None  # visitors never queue behind it


def test_without_models_the_scenes_say_so_and_the_others_are_ready():
    prep = lesson.LessonPrep("cpu", toy2d_steps=20, models=[]).start()
    assert prep.wait(120) and prep.state == "done", prep.error
    assert prep.part("bell") is not None and prep.part("photo") is not None
    for part in ("guesses", "steer", "cost"):
        assert prep.part(part) is None and "installed" in prep.problem(part)
    guess = next(s for s in lesson.SCENES if s.key == "guess")
    texts = [t.text for t in parse(lesson.preparing_svg(guess, prep)).iter(f"{SVG}text")]
    assert texts[0] == "This scene cannot be shown" and "installed" in " ".join(texts)


def test_the_warm_up_steps_aside_while_a_live_run_goes():
    state = {"busy": 1}
    prep = lesson.LessonPrep("cpu", models=[], busy=lambda: state["busy"])
    t0 = time.monotonic()
    prep.start()
    time.sleep(0.6)
    assert prep.snapshot()["ready"] == []  # waiting before its first part
    state["busy"] = 0
    assert until(lambda: prep.ready("bell"), 30)
    assert time.monotonic() - t0 >= 0.6
    prep.stop()
    prep.wait(60)


def test_the_server_shares_one_warm_up():
    before = lesson._PREP[:]
    try:
        quick = lesson.LessonPrep("cpu", models=[], toy2d_steps=20)
        lesson.install_prep(quick)
        assert lesson.shared_prep() is quick
        lesson.install_prep(None)
        first = lesson.shared_prep()
        assert lesson.shared_prep() is first and first.state != "new"
        first.stop()
        first.wait(60)
    finally:
        lesson._PREP[:] = before


def test_the_lesson_uses_the_best_installed_models():
    models = list_models()
    photo = lesson.lesson_photo_model(models)
    if photo is not None:
        assert photo.kind == "photo"
        names = [m.name for m in models]
        preferred = [n for n in lesson.PHOTO_MODELS if n in names]
        assert not preferred or photo.name == preferred[0]
    assert lesson.lesson_photo_model([]) is None and lesson.lesson_create_model([]) is None
    x, name = lesson.lesson_photo(64)
    assert max(x.shape[1:]) == 64 and x.shape[0] == 3 and name in lesson.SAMPLES_WANTED
