"""Sidebar navigation shared by every page (Streamlit's own list is hidden in config.toml so
that the home page reads "Home" rather than the file name). Icons are Material Symbols,
which ship with Streamlit's front end: they show on machines without an emoji font."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit.errors import StreamlitAPIException

ROOT = Path(__file__).resolve().parent.parent

PAGES = [
    ("app.py", "Home", ":material/home:", "What diffusion is, in a few sentences."),
    ("pages/0_Lesson.py", "Lesson", ":material/co_present:",
     "The story of diffusion in eight scenes, for a projector and a room (→ and ← move)."),
    ("pages/1_Add_noise.py", "Add noise", ":material/grain:",
     "Watch Gaussian noise swallow a photo, step by step (the forward process)."),
    ("pages/2_Restore.py", "Restore", ":material/auto_fix_high:",
     "Run a real trained denoiser and watch the picture come back (the reverse process)."),
    ("pages/3_Repair.py", "Repair", ":material/healing:",
     "Fill in damaged regions and clean up noisy photos and scans."),
    ("pages/4_Train.py", "Train", ":material/model_training:", "Train your own small diffusion model, live."),
    ("pages/7_Create.py", "Create", ":material/draw:",
     "Ask for a digit and turn the guidance knob (how text-to-image systems steer)."),
    ("pages/5_Why_diffusion.py", "Why diffusion?", ":material/balance:",
     "A GAN, a VAE and a diffusion model learn the same 2-D data side by side."),
    ("pages/6_Cost_of_steps.py", "Cost of steps", ":material/timer:",
     "How few steps are enough, and what each one costs."),
]


LESSON = "pages/0_Lesson.py"


def available_pages():
    return [p for p in PAGES if (ROOT / p[0]).exists()]


def lab_pages():
    """The lab's pages: every page but Home and the lesson."""
    return [p for p in available_pages() if p[0] not in ("app.py", LESSON)]


def sidebar_nav() -> None:
    with st.sidebar:
        for path, label, icon, _ in available_pages():
            try:
                st.page_link(path, label=label, icon=icon)
            except StreamlitAPIException:
                # A page run on its own (e.g. by AppTest) has no app around it to link to.
                break
        st.divider()
