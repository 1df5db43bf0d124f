"""Diffusion Lab: the home page."""

import streamlit as st

from ui.nav import available_pages, sidebar_nav

st.set_page_config(page_title="Diffusion Lab", page_icon="🌫️", layout="wide")
sidebar_nav()

st.title("Diffusion Lab")
st.markdown(
    """
**Diffusion models** make and repair pictures by learning to remove noise.

1. **Forward process:** take a picture and add a little random (Gaussian) noise, again and
   again, until nothing but static is left. This needs no learning at all.
2. **Reverse process:** a neural network is trained to look at a noisy picture and guess the
   clean one. Run it step by step and noise turns back into a picture: the one you noised or,
   starting from pure static, a brand-new one.

Because the network only ever learns one simple, stable task (remove a bit of noise),
diffusion trains more reliably than GANs and covers every kind of picture it saw instead of
collapsing onto a few. The price is many network calls per picture: the *number of steps*.
"""
)
for path, label, icon, text in available_pages()[1:]:
    st.page_link(path, label=label, icon=icon)
    st.caption(text)
