"""Security checks of the app's own code and settings.

* No user string is rendered as HTML: every ``unsafe_allow_html``, ``st.html``, ``st.iframe``
  and ``components.html`` in the pages gets content made by the library (allowlist below,
  with reasons), and the image picker never shows an upload's file name.
* The pages never read an uploaded file's name (so it is never a path). (The Train page
  hands its uploads to diffusion_core.media.uploads, which shows cleaned names as labels only.)
* ``.streamlit/config.toml`` keeps the safe server settings.
* Every numeric widget in the pages is clamped on the server (a static check), and the key
  widgets of pages 1-3 survive out-of-range values in the session state (AppTest).

The static checks read the source with ``ast``: they are best-effort, written to fail on a
new use that nobody has looked at yet. Add it to an allowlist only with a reason.
"""

from __future__ import annotations

import ast
import io
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from diffusion_core.media.decode import MAX_INPUT_BYTES

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([ROOT / "app.py", *(ROOT / "pages").glob("*.py"), *(ROOT / "ui").glob("*.py")])
PAGES = sorted((ROOT / "pages").glob("*.py"))


def _rel(p: Path) -> str:
    try:
        return p.relative_to(ROOT).as_posix()
    except ValueError:  # a probe file of the tests themselves
        return p.name


def _tree(p: Path) -> ast.Module:
    return ast.parse(p.read_text(encoding="utf-8"), filename=str(p))


def _call_name(call: ast.Call) -> str:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def _assignments(tree: ast.AST) -> dict[str, list[ast.AST]]:
    """Every value assigned to each plain name in the file."""
    out: dict[str, list[ast.AST]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for t in node.targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        out.setdefault(n.id, []).append(node.value)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.NamedExpr)) and node.value:
            if isinstance(node.target, ast.Name):
                out.setdefault(node.target.id, []).append(node.value)
    return out


# ================================================================ HTML made from user strings

#: (file, the call's first argument as source) -> (functions allowed to make it, why it is safe)
HTML_ALLOWED: dict[tuple[str, str], tuple[set[str], str]] = {
    ("pages/1_Add_noise.py", "html"): (
        {"scrubber_html"},
        "ui.scrubber: a fixed template plus JSON of pixel data, "
        "numbers and the schedule's name (validated against SCHEDULES by make_schedule); "
        "its script writes only numbers into the page. No user text goes in."),
    ("ui/lesson_view.py", "dissolve_html(photo, prep.cache)"): (
        {"dissolve_html"},
        "ui.scrubber.scrubber_html's page (see the Add noise entry) with the lesson's fixed CSS "
        "and key-listener script appended; no user text goes in."),
    ("ui/lesson_view.py", "lesson_css()"): (
        {"lesson_css"},
        "the Lesson's fixed style sheet: a constant built from numeric layout constants; no "
        "user text goes in."),
}
HTML_CALLS = {"html", "iframe"}  # st.html, st.iframe, components.html / .iframe, col.html ...


def _html_uses(p: Path) -> list[tuple[ast.Call, str]]:
    uses = []
    for node in ast.walk(_tree(p)):
        if not isinstance(node, ast.Call):
            continue
        unsafe = any(k.arg == "unsafe_allow_html" and not (
            isinstance(k.value, ast.Constant) and k.value.value is False) for k in node.keywords)
        if unsafe or (isinstance(node.func, ast.Attribute) and node.func.attr in HTML_CALLS):
            first = node.args[0] if node.args else next(
                (k.value for k in node.keywords if k.arg in ("body", "src", "html")), None)
            uses.append((node, ast.unparse(first) if first is not None else ""))
    return uses


def test_html_is_only_ever_made_by_the_library():
    seen = set()
    for p in SOURCES:
        assigned = _assignments(_tree(p))
        for call, arg in _html_uses(p):
            where = f"{_rel(p)}:{call.lineno} {ast.unparse(call.func)}({arg}, ...)"
            key = (_rel(p), arg)
            assert key in HTML_ALLOWED, f"unreviewed HTML output: {where}"
            makers, _why = HTML_ALLOWED[key]
            # the content is the direct result of an allowed maker, in every assignment
            values = assigned.get(arg, []) if arg.isidentifier() else [call.args[0]]
            assert values, f"{where}: cannot see where the HTML comes from"
            for v in values:
                assert isinstance(v, ast.Call) and _call_name(v) in makers, (
                    f"{where}: made by {ast.unparse(v)}, not by one of {sorted(makers)}")
            seen.add(key)
    # no stale entries: every allowlisted use still exists
    assert seen == set(HTML_ALLOWED), set(HTML_ALLOWED) - seen


def test_the_scrubber_only_takes_a_validated_schedule_name():
    from diffusion_core.maths.schedules import SCHEDULES, make_schedule

    with pytest.raises(ValueError):
        make_schedule("</script><script>alert(1)</script>")
    assert all(re.fullmatch(r"[a-z0-9_]+", s) for s in SCHEDULES)


# ================================================================ upload file names


def test_upload_file_names_are_never_used():
    """Nothing reads ``.name`` of an uploaded file (so it is never a path nor on screen),
    and no uploaded file object flows into open() or Path()."""
    for p in SOURCES:
        tree = _tree(p)
        uploads = set()
        for node in ast.walk(tree):  # names bound to st.file_uploader(...)
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and \
                    _call_name(node.value) == "file_uploader":
                uploads |= {n.id for t in node.targets for n in ast.walk(t)
                            if isinstance(n, ast.Name)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                    node.value.id in uploads:
                assert node.attr in ("getvalue", "read", "size", "type", "file_id"), (
                    f"{_rel(p)}:{node.lineno} uses {ast.unparse(node)} of an upload")
            if isinstance(node, ast.Call) and _call_name(node) in ("open", "Path"):
                names = {n.id for a in node.args for n in ast.walk(a) if isinstance(n, ast.Name)}
                assert not names & uploads, f"{_rel(p)}:{node.lineno} opens an upload as a path"


def _png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((24, 32, 3), 90, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _everything_sent(at: AppTest) -> str:
    """Every element the page sent to the browser (text, image captions, the iframe's HTML,
    charts, widgets), as one string."""
    def walk(node):
        yield str(getattr(node, "proto", ""))
        children = getattr(node, "children", None)
        for child in children.values() if isinstance(children, dict) else ():
            yield from walk(child)

    return "\n".join(walk(at._tree))


def test_a_hostile_upload_name_never_reaches_the_page(user_models_dir):
    name = '<img src=x onerror="alert(1)">evil.png'
    at = AppTest.from_file(str(ROOT / "pages/1_Add_noise.py"), default_timeout=120)
    at.session_state["lab_max_side"] = 128
    at.run()
    at.radio(key="w_noise_lab_source").set_value("upload").run()
    at.file_uploader[0].upload(name, _png(), "image/png").run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.session_state["lab_upload_bytes"] is not None
    sent = _everything_sent(at)
    assert "Add noise: the forward process" in sent  # the search does see the page
    assert "onerror" not in sent and "evil" not in sent
    assert at.session_state["lab_upload_label"] == "your upload"


# ================================================================ server settings


def test_streamlit_config_is_locked_down():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    server, client, browser = cfg["server"], cfg["client"], cfg["browser"]
    # the server refuses big uploads before our code sees them, and below the loader's limit
    assert 1 <= server["maxUploadSize"] <= MAX_INPUT_BYTES // 2**20
    assert server["enableXsrfProtection"] is True
    assert 1 <= server.get("maxMessageSize", 200) <= 500
    assert client["showErrorDetails"] in ("type", "none", False)
    assert client["toolbarMode"] == "viewer"
    assert browser["gatherUsageStats"] is False
    assert server.get("runOnSave", False) is False
    # a full gc.collect() after every (fragment) rerun starves concurrent restores (load.md)
    assert cfg["runner"]["postScriptGC"] is False


# ================================================================ numeric widgets are clamped

NUMERIC = {"number_input", "slider", "select_slider"}

#: (file, widget label) -> why the value cannot be out of range without a clamp call
_BY_REQUEST = "read from the session by a diffusion_core.app request ({}), which clamps it: " \
    "test_page_requests_clamp_hostile_session_values"
CLAMP_ALLOWED = {
    ("pages/2_Restore.py", "Sampler step"): (
        "looked up with RestoreOutcome.frame(k): any other value shows the first frame"),
    **{("pages/3_Repair.py", label): _BY_REQUEST.format("inpaint_request") for label in (
        "Steps", "Rounds of harmonising", "Steps between harmonising",
        "Randomness per step (eta)")},
    ("pages/3_Repair.py", "Steps (step by step only)"): _BY_REQUEST.format("denoise_request"),
    **{("pages/4_Train.py", label): _BY_REQUEST.format("TrainRequest.settings") for label in (
        "Batch size", "Learning rate", "New samples every … steps", "Crop size (pixels)")},
    **{("pages/5_Why_diffusion.py", label): _BY_REQUEST.format("CompareRequest.from_form")
       for label in ("Training steps", "Seed")},
    ("ui/lesson_view.py", "Noise step"): (
        "looked up among the precomputed bell figures: any other value shows the first"),
    ("ui/lesson_view.py", "Guidance: how hard to push towards the request"): (
        "looked up among the precomputed guidance figures: any other value shows the first"),
    ("ui/repair_view.py", "Brush size"): (
        "only the canvas's brush width in the browser; the server never computes with it"),
}


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _trusted(tree: ast.AST) -> frozenset[str]:
    """Names the file imports from ``diffusion_core.app``: the pages' request layer, whose
    contract is to take raw page values and clamp them (its own tests check that)."""
    return frozenset(a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                     and (n.module or "").split(".")[:2] == ["diffusion_core", "app"]
                     for a in n.names)


def _is_clamp(call: ast.Call, trusted: frozenset[str] = frozenset()) -> bool:
    name = _call_name(call)
    if "clamp" in name.lower() or name == "effective_settings" or _root_name(call.func) in trusted:
        return True
    other = {"min": "max", "max": "min"}.get(name)  # min(max(v, lo), hi) and the reverse
    return other is not None and any(isinstance(a, ast.Call) and _call_name(a) == other
                                     for a in call.args)


def _targets(call: ast.Call, parent: dict, trusted: frozenset[str] = frozenset()
             ) -> tuple[list[tuple[str, str]], bool]:
    """What the widget's value is known by: its result's name, its key (or the key of the
    shared value it is bound to) and the dict of keys it comes from. Second value: the
    widget call sits inside a clamp call already."""
    out: list[tuple[str, str]] = []
    node, inside = call, False
    while node in parent:
        node = parent[node]
        if isinstance(node, ast.Call) and _is_clamp(node, trusted):
            inside = True
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            out += [("name", t.id) for t in targets if isinstance(t, ast.Name)]
            break
        if isinstance(node, ast.stmt):
            break
    for k in call.keywords:
        key = None
        if k.arg == "key":
            key = k.value
        elif k.arg is None and isinstance(k.value, ast.Call) and _call_name(k.value) == "bind":
            key = k.value.args[0]
        if key is not None:
            out.append(("key", ast.dump(key)))
            if isinstance(key, ast.Subscript) and isinstance(key.value, ast.Name):
                out.append(("name", key.value.id))  # e.g. ADV["steps"]: the dict ADV
    return out, inside


def _mentions(expr: ast.AST, target: tuple[str, str], assigned: dict, depth: int = 1) -> bool:
    kind, what = target
    for n in ast.walk(expr):
        if kind == "name" and isinstance(n, ast.Name) and n.id == what:
            return True
        if kind == "key":
            if isinstance(n, ast.Subscript) and ast.dump(n.slice) == what:
                return True
            if isinstance(n, ast.Call) and _call_name(n) == "get" and n.args and \
                    ast.dump(n.args[0]) == what:
                return True
        if depth and isinstance(n, ast.Name) and any(
                _mentions(v, target, assigned, depth - 1) for v in assigned.get(n.id, [])):
            return True
    return False


def _unclamped(p: Path) -> list[str]:
    tree = _tree(p)
    parent = {c: n for n in ast.walk(tree) for c in ast.iter_child_nodes(n)}
    assigned = _assignments(tree)
    trusted = _trusted(tree)
    guards: list[ast.AST] = []  # what clamps and membership tests look at
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and _is_clamp(n, trusted):
            guards += list(n.args) + [k.value for k in n.keywords]
        elif isinstance(n, ast.Compare) and any(isinstance(o, (ast.In, ast.NotIn)) for o in n.ops):
            guards += [n.left]
    bad = []
    for n in ast.walk(tree):
        if not (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                and n.func.attr in NUMERIC):
            continue
        label = n.args[0].value if n.args and isinstance(n.args[0], ast.Constant) else "?"
        if (_rel(p), label) in CLAMP_ALLOWED:
            continue
        targets, inside = _targets(n, parent, trusted)
        if inside or any(_mentions(g, t, assigned) for g in guards for t in targets):
            continue
        bad.append(f"{_rel(p)}:{n.lineno} {n.func.attr}({label!r})")
    return bad


def test_every_numeric_widget_is_clamped_on_the_server():
    bad = [b for p in PAGES + sorted((ROOT / "ui").glob("*.py")) for b in _unclamped(p)]
    assert not bad, "numeric widgets without a server-side clamp:\n" + "\n".join(bad)


def test_page_requests_clamp_hostile_session_values():
    """The requests that the allow-list above relies on really clamp what they read."""
    import torch

    from diffusion_core.app.repair import NoiseReading, denoise_request, inpaint_request
    from diffusion_core.app.toy2d import CompareRequest
    from diffusion_core.app.train import TrainRequest
    from diffusion_core.training.presets import LIMITS

    x, mask = torch.zeros(3, 8, 8), torch.zeros(8, 8, dtype=torch.bool)
    hostile = {"repair_inpaint_steps": 10**9, "repair_resample": -3, "repair_jump": "x",
               "repair_eta": float("nan"), "repair_denoise_steps": -(10**9),
               "toy2d_steps": 10**12, "toy2d_seed": -1}
    fill = inpaint_request(x, mask, "preset", hostile, 0, True)
    assert (fill.steps, fill.resample, fill.jump) == (500, 1, 10) and 0 <= fill.eta <= 1
    clean = denoise_request(x, None, NoiseReading(25.0, 0.2, False), hostile, 0, True, ())
    assert clean.steps == 1
    cmp_ = CompareRequest.from_form(hostile)
    assert cmp_.seed == 0 and cmp_.budget.steps <= 20_000
    train = TrainRequest.from_form({"train_dataset": "digits", "train_batch": 10**9,
                                    "train_lr": -1.0, "train_preview_every": 0,
                                    "train_patch": 10**6}).settings
    for k in ("batch", "lr", "preview_every", "patch"):
        lo, hi = LIMITS[k][:2]
        assert lo <= train[k] <= hi, (k, train[k])


def test_the_clamp_check_notices_a_missing_clamp(tmp_path):
    p = tmp_path / "probe.py"
    p.write_text("import streamlit as st\nx = st.slider('Loose', 0, 10)\n"
                 "y = st.slider('Tight', 0, 10)\ny = clamp_int(y, 0, 10, 0)\n"
                 "st.number_input('Keyed', 0, 5, key='k')\nv = clamp_int(ss['k'], 0, 5, 0)\n"
                 "st.number_input('Bound', 0, 5, **bind(K_X))\nw = min(max(ss[K_X], 0), 5)\n"
                 "st.number_input('Unbound', 0, 5, **bind(K_Y))\nw = ss[K_Y]\n"
                 "from diffusion_core.app.restore import RestoreRequest\n"
                 "from diffusion_core.maths.forward import x_at_step\n"
                 "st.number_input('Requested', 0, 5, key='r')\nq = RestoreRequest.of(steps=ss['r'])\n"
                 "st.number_input('Elsewhere', 0, 5, key='e')\nz = x_at_step(ss['e'])\n")
    assert _unclamped(p) == ["probe.py:2 slider('Loose')", "probe.py:9 number_input('Unbound')",
                             "probe.py:15 number_input('Elsewhere')"]


def test_the_html_check_notices_user_text(tmp_path):
    p = tmp_path / "probe.py"
    p.write_text("import streamlit as st\nname = st.text_input('Name')\n"
                 "st.markdown(f'<b>{name}</b>', unsafe_allow_html=True)\nst.html(name)\n"
                 "st.markdown('**fine**', unsafe_allow_html=False)\n")
    assert [(c.lineno, arg) for c, arg in _html_uses(p)] == [(3, "f'<b>{name}</b>'"), (4, "name")]


# ---------------------------------------------------------------- out-of-range session values

HOSTILE = {
    "lab_T": -5, "lab_step": 10**9, "lab_seed": -(2**40), "lab_max_side": 10**6,
    "lab_schedule": "<b>nope</b>",
}


def _run(page: str, extra: dict) -> AppTest:
    at = AppTest.from_file(str(ROOT / page), default_timeout=180)
    for k, v in {**HOSTILE, **extra}.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_add_noise_page_clamps_hostile_values(user_models_dir):
    at = _run("pages/1_Add_noise.py", {})
    assert at.session_state["lab_T"] == 10 and at.session_state["lab_seed"] == 0
    assert at.number_input(key="w_noise_lab_T").value == 10
    step = at.slider(key="w_noise_lab_step")
    assert step.value == at.session_state["lab_step"] == 10 and step.max == 10
    assert any("T = 10" not in m.value and "× image" in m.value for m in at.markdown)
    # a hostile client: widget values far outside their bounds
    at.number_input(key="w_noise_lab_T").set_value(10**7)
    at.number_input(key="w_noise_lab_seed").set_value(-1)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert 10 <= at.session_state["lab_T"] <= 4000 and 0 <= at.session_state["lab_seed"]
    assert at.slider(key="w_noise_lab_step").value <= at.session_state["lab_T"]


def test_a_step_beyond_a_smaller_T_survives_a_trip_to_another_page(user_models_dir):
    """Found by these tests: T lowered to 100 on the Add-noise page (with the shared step
    at 250), then another page and back, used to crash the step slider."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.session_state["lab_max_side"] = 128
    at.run()
    at.switch_page("pages/1_Add_noise.py").run()
    at.number_input(key="w_noise_lab_T").set_value(100).run()
    at.switch_page("pages/5_Why_diffusion.py").run()
    at.switch_page("pages/1_Add_noise.py").run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.slider(key="w_noise_lab_step").value == 100


def test_restore_page_clamps_hostile_values(user_models_dir):
    at = _run("pages/2_Restore.py", {"restore_steps": 10**9, "restore_step": -7,
                                     "restore_device": "tpu"})
    assert not at.error, [e.value for e in at.error]
    assert 1 <= at.slider(key="restore_step").value <= 10
    assert at.session_state["restore_device"] == "auto"
    assert any("T = 10 " in c.value for c in at.caption)
    assert 1 <= at.number_input(key="restore_steps").value <= 1000  # not a billion
    for c in at.caption:  # what the page plans fits T = 10
        m = re.fullmatch(r"Only (\d+) steps? possible from noise step (\d+)\.", c.value)
        assert m is None or int(m[1]) <= int(m[2]) <= 10
    # a hostile client: widget values far outside their bounds
    at.slider(key="restore_eta").set_value(55.0)
    at.number_input(key="restore_steps").set_value(-(10**9))
    at.slider(key="restore_step").set_value(10**6)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert 0.0 <= at.session_state["restore_eta"] <= 1.0
    assert 1 <= at.session_state["restore_steps"] <= 1000
    assert 1 <= at.slider(key="restore_step").value <= 10


def test_repair_page_clamps_hostile_values(user_models_dir):
    at = _run("pages/3_Repair.py", {"repair_size": 5})
    assert not at.error, [e.value for e in at.error]
    work = next(c.value for c in at.caption if c.value.startswith("Working on"))
    side = re.search(r"at (\d+)×(\d+) pixels", work)
    assert side and 32 <= int(side[1]) == int(side[2]) <= 64, work  # the smallest sizes
    # a hostile client: widget values far outside their bounds
    at.number_input(key="repair_inpaint_steps").set_value(10**6)
    at.number_input(key="repair_resample").set_value(-3)
    at.number_input(key="repair_jump").set_value(0)
    at.slider(key="repair_noise_amount").set_value(10**4)
    at.number_input(key="repair_denoise_steps").set_value(10**5)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    calls = int(re.search(r"\((\d+) model calls\)", at.button(key="repair_run_inpaint").label)[1])
    assert 5 <= calls <= 500 * 10
    assert any("you added" in m.value for m in at.markdown)
    added = re.search(r"you added (\d+)", " ".join(m.value for m in at.markdown))
    assert added and 1 <= int(added[1]) <= 100
