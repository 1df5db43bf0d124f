"""The code's shape: ARCHITECTURE.md names every module, and pages stay layout and words."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("page_logic", ROOT / "scripts" / "page_logic.py")
page_logic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(page_logic)

MAX_PAGE_LOGIC = 40


def _library_modules() -> list[tuple[str, str]]:
    out = []
    for p in sorted((ROOT / "diffusion_core").rglob("*.py")):
        rel = p.relative_to(ROOT / "diffusion_core")
        if rel.name in ("__init__.py", "__main__.py") or len(rel.parts) == 1:
            continue
        out.append((rel.parts[0], rel.stem))
    return out


def test_architecture_names_every_subpackage_and_module():
    text = (ROOT / "ARCHITECTURE.md").read_text()
    missing = []
    for pkg, mod in _library_modules():
        if f"`{pkg}`" not in text:
            missing.append(pkg)
        elif pkg != "toy2d" and not re.search(rf"`{mod}`", text):
            missing.append(f"{pkg}.{mod}")
    for top in (ROOT / "diffusion_core").glob("*.py"):
        if top.stem not in ("__init__", "__main__") and f"`{top.stem}`" not in text:
            missing.append(top.stem)
    assert not missing, f"ARCHITECTURE.md does not mention: {sorted(set(missing))}"


@pytest.mark.parametrize("page", page_logic.page_files(), ids=lambda p: p.name)
def test_pages_are_layout_and_words(page):
    n = page_logic.logic_lines(page)
    assert n < MAX_PAGE_LOGIC, f"{page.name}: {n} non-layout lines (limit {MAX_PAGE_LOGIC})"


def test_the_counter_counts_logic_but_not_layout(tmp_path):
    page = tmp_path / "p.py"
    page.write_text(
        '"""doc"""\nimport streamlit as st\nfrom ui.picker import image_picker\n\n'
        "st.title('x')\ncol, = st.columns(1)\ncol.image([0])\nimage_picker()\n"
        "x = 1 + 2\nif x:\n    st.write(x)\nfor i in range(3):\n    y = i * 2\n"
    )
    # x = ..., the if header, the for header and y = ... are logic; the rest is layout
    assert page_logic.logic_lines(page) == 4
