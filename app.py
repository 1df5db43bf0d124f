"""Diffusion Lab: home page."""

from pathlib import Path

import streamlit as st

st.set_page_config(page_title="Diffusion Lab", page_icon="🌫️", layout="wide")

st.title("🌫️ Diffusion Lab")
st.markdown(
    """
**Diffusion models** make and repair pictures by learning to remove noise.

1. **Forward process:** take a picture and add a little random (Gaussian) noise, again and
   again, until nothing but static is left. This needs no learning at all.
2. **Reverse process:** a neural network is trained to look at a noisy picture and guess the
   clean one. Run it step by step, and noise turns back into a picture: the one you noised,
   or, starting from pure static, a brand-new one.

Because the network only ever learns a simple, stable task (remove a bit of noise), diffusion
trains more reliably than GANs and covers every kind of picture it saw instead of collapsing
onto a few. The price is many network calls per picture: the *number of steps*.
"""
)

PAGES = [
    ("pages/1_Add_noise.py", "🌫️ Add noise", "Watch Gaussian noise swallow a photo, step by step."),
    ("pages/2_Restore.py", "✨ Restore", "Run a real trained denoiser and watch the picture come back."),
    ("pages/3_Repair.py", "🩹 Repair", "Fill in damaged regions and clean up noisy photos and scans."),
    ("pages/4_Train.py", "🏋️ Train", "Train your own small diffusion model, live."),
    ("pages/5_Why_diffusion.py", "⚖️ Why diffusion?", "GAN vs VAE vs diffusion on 2-D data."),
    ("pages/6_Cost_of_steps.py", "⏱️ Cost of steps", "How few steps are enough, and what they cost."),
]
root = Path(__file__).parent
for path, label, text in PAGES:
    if (root / path).exists():
        st.page_link(path, label=label)
        st.caption(text)
