"""Real browser against a real `streamlit run`: a tiny training on the Train page, live."""

from __future__ import annotations

import re

import pytest

from tests.waiting import choose

pytestmark = pytest.mark.browser


def _set_number(page, label: str, n: int) -> None:
    box = page.get_by_role("spinbutton", name=label, exact=True)
    box.fill(str(n))
    box.press("Enter")
    page.wait_for_function(
        "([l, n]) => [...document.querySelectorAll('input')].some("
        "i => i.getAttribute('aria-label') === l && i.value === String(n))", arg=[label, n])


def _progress_step(page) -> int:
    """The step the progress bar shows now (-1: no bar or no step yet); never waits."""
    text = page.evaluate(
        "() => document.querySelector('[data-testid=stProgress]')?.innerText || ''")
    m = re.search(r"Step ([\d,]+) of", text)
    return int(m.group(1).replace(",", "")) if m else -1


def test_train_tiny_model_live(app_server, page, artifacts_dir):
    page.goto(app_server + "/Train")
    page.get_by_text("Some of the 1,797 pictures it will learn from").wait_for()
    page.get_by_text("Advanced settings").click()
    choose(page, "Model size", "Tiny (a quick test; learns little)")
    page.get_by_text("tiny network").wait_for()
    _set_number(page, "Training steps", 400)
    _set_number(page, "New samples every … steps", 50)
    name = page.get_by_role("textbox", name="Name of your model")
    name.fill("browser-tiny")
    name.press("Enter")
    page.get_by_text("400 steps of 32 pictures").wait_for()
    page.get_by_role("button", name="▶ Start").click()
    page.get_by_role("heading", name="Training “browser-tiny”").wait_for(timeout=60_000)
    # live: the progress moves on and the loss chart appears, without any click
    seen: set[int] = set()
    chart_while_running = False
    done = page.get_by_text("is saved; pick it on the Restore page")
    for _ in range(1200):  # at most about 5 minutes
        if done.count():
            break
        step = _progress_step(page)
        if 0 < step < 400:
            seen.add(step)
            chart_while_running |= page.locator(".js-plotly-plot").count() > 0
        page.wait_for_timeout(250)
    done.wait_for(timeout=60_000)
    assert len(seen) >= 2, seen  # at least two different steps were shown while it ran
    assert chart_while_running
    page.get_by_text("16 pictures the model draws").first.wait_for()
    assert page.locator(".stException").count() == 0
    page.set_viewport_size({"width": 1400, "height": 2600})
    page.evaluate("() => document.querySelector('[data-testid=stMain]')?.scrollTo(0, 0)")
    page.wait_for_timeout(1500)  # let the chart and images paint
    page.screenshot(path=str(artifacts_dir / "train.png"), full_page=True)
    # the new model is offered on the Restore page
    page.goto(app_server + "/Restore")
    page.get_by_text("Pure noise (generate)").click()
    page.wait_for_function(  # the page has rerun: one model list, the digits models first
        "() => { const b = [...document.querySelectorAll('input[aria-label=Model]')];"
        " return b.length === 1 && b[0].value === 'digits (shipped)'; }")
    choose(page, "Model", "browser-tiny (yours)")
