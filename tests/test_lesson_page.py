"""AppTest: the Lesson page shows each scene's logic: one visual with alt text, at most two
sentences, notes only when asked for, at most one control; ``?scene=N`` and the Back / Next
buttons move through the scenes; the live scenes run and finish by themselves."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from diffusion_core.app import lesson
from tests.waiting import wait_for_page_job

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "0_Lesson.py")
NAV_BUTTONS = 2 + lesson.N_SCENES  # ←, →, and the scene index (a button per scene)


@pytest.fixture(scope="module")
def warm(user_models_dir):
    """A warm server: a quick warm-up (a short 2-D training) finished before the scenes."""
    prep = lesson.LessonPrep("cpu", toy2d_steps=60).start()
    lesson.install_prep(prep)
    assert prep.wait(300) and prep.state == "done", prep.error
    assert not prep.problems, prep.problems
    return prep


def open_scene(n: int | str | None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    if n is not None:
        at.query_params["scene"] = str(n)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def alts(at) -> list[str]:
    return [img.alt for el in at.image for img in el.proto.imgs]


def iframes(at) -> list:
    return at.get("iframe")


def scene_param(at) -> str:
    value = at.query_params["scene"]
    return value[-1] if isinstance(value, list) else value


@pytest.mark.parametrize("n", range(1, lesson.N_SCENES + 1))
def test_each_scene_has_one_visual_few_words_and_at_most_one_control(warm, n):
    scene = lesson.SCENES[n - 1]
    at = open_scene(n)
    if scene.live:  # its run starts at once; the finished picture replaces the live one
        wait_for_page_job(at, "lesson_restore_job" if scene.key == "restore" else "lesson_create_job")
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value == scene.title
    words = at.markdown[0].value if at.markdown else ""
    assert words == lesson.scene_words(scene, warm)
    assert 1 <= lesson.sentences(words) <= 2
    visuals = alts(at) + [f.proto.alt for f in iframes(at)]
    assert len(visuals) == 1, visuals  # one big visual
    if scene.key == "dissolve":
        assert iframes(at)[0].proto.alt == scene.alt  # the frame's accessible name
    else:
        assert alts(at) == [scene.alt]
    controls = len(at.select_slider) + len(at.button) - NAV_BUTTONS + len(at.slider)
    assert controls <= 1
    assert not [m for m in at.markdown if m.value == scene.notes]  # notes are off
    assert scene_param(at) == str(n)


def test_notes_are_for_the_presenter_when_switched_on(warm):
    at = open_scene(3)
    at.toggle(key="lesson_notes").set_value(True).run()
    assert [m.value for m in at.markdown if m.value == lesson.SCENES[2].notes]
    at.button(key="lesson_next").click().run()  # they stay on for the next scene
    assert any(m.value == lesson.SCENES[3].notes for m in at.markdown)


@pytest.mark.parametrize("raw", ["0", "9", "twelve", "3.5"])
def test_a_bad_scene_number_opens_scene_one_with_a_message(warm, raw):
    at = open_scene(raw)
    assert at.title[0].value == lesson.SCENES[0].title
    assert at.toast and "no scene" in at.toast[0].value and "1 to 8" in at.toast[0].value
    assert scene_param(at) == "1"


def test_no_scene_number_opens_scene_one_quietly(warm):
    at = open_scene(None)
    assert at.title[0].value == lesson.SCENES[0].title and not at.toast


def test_buttons_and_the_scene_index_move_through_the_lesson(warm):
    at = open_scene(2)
    assert at.button(key="lesson_back").disabled is False
    at.button(key="lesson_next").click().run()
    assert at.title[0].value == lesson.SCENES[2].title and scene_param(at) == "3"
    at.button(key="lesson_back").click().run()
    assert at.title[0].value == lesson.SCENES[1].title
    at.button(key="lesson_go_6").click().run()  # the index: jump to scene 7
    assert at.button(key="lesson_go_6").proto.type == "primary"  # where you are
    assert at.title[0].value == lesson.SCENES[6].title and scene_param(at) == "7"
    at = open_scene(8)
    assert at.button(key="lesson_next").disabled  # the last scene
    at = open_scene(1)
    assert at.button(key="lesson_back").disabled


def test_the_bell_curve_follows_the_noise_step(warm):
    at = open_scene(2)
    first = at.image[0].proto.imgs[0].url
    at.select_slider(key="lesson_bell_step").set_value(1000).run()
    assert not at.exception
    last = at.image[0].proto.imgs[0].url
    assert last != first
    assert at.image[0].proto.imgs[0].url == _data_url(warm.part("bell")[1000])


def test_the_guidance_knob_changes_the_pictures(warm):
    at = open_scene(6)
    assert at.image[0].proto.imgs[0].url == _data_url(warm.part("steer")["figures"][0.0])
    at.select_slider(key="lesson_guidance").set_value(4.0).run()
    assert at.image[0].proto.imgs[0].url == _data_url(warm.part("steer")["figures"][4.0])


def _data_url(svg: str) -> str:
    import base64

    svg = svg.replace("<svg", '<svg xmlns="http://www.w3.org/2000/svg" ', 1) \
        if 'xmlns="http://www.w3.org/2000/svg"' not in svg.split(">", 1)[0] else svg
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def test_the_live_restore_starts_at_once_and_runs_again_on_request(warm):
    at = open_scene(4)
    job = at.session_state["lesson_restore_job"]
    assert job is not None  # started by opening the scene
    plan = job.settings["plan"]
    assert plan.seconds is None or plan.seconds <= lesson.LIVE_BUDGET_S
    wait_for_page_job(at, "lesson_restore_job")
    assert job.state == "done"
    status = [c.value for c in at.caption if c.value.startswith("Done live:")]
    assert status and f"{job.result.steps_run} steps" in status[0]
    at.button(key="lesson_restore_job_again").click().run()
    again = at.session_state["lesson_restore_job"]
    assert again is not job
    wait_for_page_job(at, "lesson_restore_job")
    assert again.state == "done"


def test_leaving_a_live_scene_stops_its_run(warm):
    at = open_scene(4)
    job = at.session_state["lesson_restore_job"]
    at.button(key="lesson_next").click().run()
    assert job.stop_requested or job.done
    # coming back starts a new run
    at.button(key="lesson_back").click().run()
    assert at.session_state["lesson_restore_job"] is not job
    wait_for_page_job(at, "lesson_restore_job")


def test_the_live_drawing_draws_new_pictures_on_request(warm):
    at = open_scene(5)
    wait_for_page_job(at, "lesson_create_job")
    first = at.session_state["lesson_create_job"]
    assert first.state == "done" and first.settings["model"] == lesson.lesson_create_model().name
    at.button(key="lesson_create_job_again").click().run()
    wait_for_page_job(at, "lesson_create_job")
    second = at.session_state["lesson_create_job"]
    assert second is not first and second.seed == first.seed + 1
    assert not (second.result.final == first.result.final).all()
