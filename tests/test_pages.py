"""AppTest: every page runs; the Add-noise page reacts to an upload and to its slider."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["app.py"] + sorted(str(p.relative_to(ROOT)) for p in (ROOT / "pages").glob("*.py"))


def _png_bytes(w=80, h=60) -> bytes:
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:, : w // 2] = (200, 30, 30)
    arr[:, w // 2 :] = (20, 160, 60)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("page", PAGES)
def test_page_runs_without_exception(page, user_models_dir):
    at = AppTest.from_file(str(ROOT / page), default_timeout=120)
    at.run()
    assert not at.exception, [e.message for e in at.exception]


def _image_urls(at) -> list[str]:
    return [u for im in at.image for u in im.value]


def test_add_noise_upload_and_slider_changes_image(user_models_dir):
    at = AppTest.from_file(str(ROOT / "pages/1_Add_noise.py"), default_timeout=120)
    at.run()
    at.radio(key="w_noise_lab_source").set_value("upload").run()
    assert not at.exception
    at.file_uploader[0].upload("red_green.png", _png_bytes(), "image/png").run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.session_state["lab_upload_bytes"] is not None
    at.slider(key="w_noise_lab_step").set_value(0).run()
    clean = _image_urls(at)
    at.slider(key="w_noise_lab_step").set_value(700).run()
    noisy = _image_urls(at)
    assert not at.exception
    assert clean[0] != noisy[0]
    assert any("0.30" in m.value or "× image" in m.value for m in at.markdown)


def test_add_noise_bad_upload_shows_message_and_keeps_working(user_models_dir):
    at = AppTest.from_file(str(ROOT / "pages/1_Add_noise.py"), default_timeout=120)
    at.run()
    at.radio(key="w_noise_lab_source").set_value("upload").run()
    at.file_uploader[0].upload("notes.png", b"this is not an image", "image/png").run()
    assert not at.exception
    assert at.error and "image" in at.error[0].value.lower()
    # the page still renders the built-in sample meanwhile
    assert _image_urls(at)


def test_shared_settings_are_also_the_widgets_defaults(user_models_dir):
    # A value set through session state reaches the browser once; a browser that misses it
    # falls back to the widget's default. So each shared setting is its widget's default too
    # (an upload once reset "Number of steps T" to its minimum, 10, in a real browser).
    at = AppTest.from_file(str(ROOT / "pages/1_Add_noise.py"), default_timeout=120)
    at.session_state["lab_T"] = 700
    at.session_state["lab_seed"] = 42
    at.session_state["lab_schedule"] = "cosine"
    at.session_state["lab_max_side"] = 256
    at.session_state["lab_step"] = 123
    at.run()
    assert not at.exception
    assert at.number_input(key="w_noise_lab_T").proto.default == 700
    assert at.number_input(key="w_noise_lab_seed").proto.default == 42
    box = at.selectbox(key="w_noise_lab_schedule")
    assert box.options[box.proto.default] == "cosine"
    sizes = at.select_slider(key="w_noise_lab_max_side")
    assert [sizes.options[int(i)] for i in sizes.proto.default] == ["256"]
    assert list(at.slider(key="w_noise_lab_step").proto.default) == [123]
    assert at.radio(key="w_noise_lab_source").proto.default == 0


def test_page_settings_set_by_code_are_also_the_widgets_defaults(user_models_dir):
    at = AppTest.from_file(str(ROOT / "pages/2_Restore.py"), default_timeout=120)
    at.session_state["restore_steps"] = 40
    at.session_state["restore_sampler"] = "heun"
    at.run()
    assert not at.exception
    assert at.number_input(key="restore_steps").proto.default == 40  # not the minimum, 1
    box = at.selectbox(key="restore_sampler")
    assert box.options[box.proto.default] == box.format_func("heun")
    cost = AppTest.from_file(str(ROOT / "pages/6_Cost_of_steps.py"), default_timeout=120)
    cost.session_state["cost_size"] = 192
    cost.session_state["cost_steps"] = [2, 10]
    cost.run()
    assert not cost.exception
    sizes = cost.select_slider(key="cost_size")
    assert [sizes.options[int(i)] for i in sizes.proto.default] == ["192"]
    steps = cost.multiselect(key="cost_steps")
    assert sorted(steps.options[int(i)] for i in steps.proto.default) == ["10", "2"]
