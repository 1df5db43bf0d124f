"""The bad-input corpus on screen: every file of tests/data/make_bad.py uploaded on the
Add-noise page gives either the picture or one clear message, never an exception.

One AppTest session takes the files one after another, as a visitor would (one page run
per file): a good file replaces the picture, a bad one shows the loader's sentence while
the previous picture stays on screen.

Files whose extension the uploader does not list (.pdf, .zip, .bin) never get that far in
a browser: the upload widget refuses them, and Streamlit checks the name again on the
server. A visitor can still rename them, so they are uploaded as ``<name>.png`` here: the
content is what the page has to cope with.
"""

from __future__ import annotations

import hashlib
import importlib.util
import mimetypes
import sys
from pathlib import Path
from types import ModuleType

import pytest
from streamlit.testing.v1 import AppTest

from diffusion_core.media.decode import ImageLoadError, load_image
from ui.picker import UPLOAD_TYPES

ROOT = Path(__file__).resolve().parent.parent


def _import_make_bad() -> ModuleType:
    path = Path(__file__).parent / "data" / "make_bad.py"
    spec = importlib.util.spec_from_file_location("make_bad", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_bad", module)
    spec.loader.exec_module(module)
    return module


make_bad = _import_make_bad()
NAMES = make_bad.corpus_names()
#: must stay in (the brief of the issue names them); the rest may be trimmed for speed
REQUIRED = {"zero_bytes.png", "truncated.png", "truncated.jpg", "text.png", "html.jpg",
            "bomb_100000x100000.png", "huge_20000x20000.png", "gray16.png", "rgb48.png",
            "float32.tif", "float32_nan_inf.tif", "cmyk.jpg", "palette.png",
            "palette_transparent.png", "animated.gif", "animated.webp", "exif_rotated.jpg",
            "exif_garbage.jpg", "multipage.tif"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    # written by the script into tests/data/bad/ (git-ignored), as bench/bad_inputs.py does
    return make_bad.make_corpus(Path(__file__).parent / "data" / "bad")


@pytest.fixture(scope="module")
def page(user_models_dir) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages/1_Add_noise.py"), default_timeout=120)
    at.session_state["lab_max_side"] = 128  # small: one page run per file stays quick
    at.run()
    at.radio(key="w_noise_lab_source").set_value("upload").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _expected_error(data: bytes) -> str | None:
    try:
        load_image(data, max_side=64)
    except ImageLoadError as e:
        return str(e)
    return None


def test_the_required_cases_are_in_the_corpus():
    assert REQUIRED <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_each_bad_file_gives_a_picture_or_one_clear_message(page, corpus, name):
    at = page
    data = corpus[name].read_bytes()
    mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
    expected = _expected_error(data)
    if Path(name).suffix.lower().lstrip(".") not in UPLOAD_TYPES:
        name, mime = name + ".png", "image/png"  # renamed by the visitor
    at.file_uploader[0].upload(name, data, mime).run()
    assert not at.exception, [e.message for e in at.exception]
    errors = [e.value for e in at.error]
    images = [u for im in at.image for u in im.value]
    assert images, "the page must keep showing a picture"
    if expected is None:  # a usable picture: it is the one on screen now
        assert errors == [], errors
        assert at.session_state["lab_upload_digest"] == hashlib.sha256(data).hexdigest()
        assert at.session_state["lab_upload_bytes"] == data
    else:  # one sentence, the loader's own, and nothing technical
        assert errors == [expected], errors
        ss = at.session_state
        assert "lab_upload_bytes" not in ss or ss["lab_upload_bytes"] != data
        text = expected.lower()
        assert expected.endswith(".") and "traceback" not in text and "errno" not in text
