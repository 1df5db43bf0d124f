"""Diffusion Lab: the home page. It opens with the idea in motion (a photo dissolving into
static and the shipped model bringing it back: ``docs/home_loop.gif``, made by
``scripts/home_loop.py``), then the words, then the lesson ("Give a talk") and the lab's
pages."""

from pathlib import Path

import streamlit as st

from ui.nav import LESSON, lab_pages, sidebar_nav

HOME_LOOP = Path(__file__).resolve().parent / "docs" / "home_loop.gif"

st.set_page_config(page_title="Diffusion Lab", page_icon="🌫️", layout="wide")
sidebar_nav()

st.title("Diffusion Lab")
if HOME_LOOP.is_file():
    st.image(str(HOME_LOOP), width=384,
             caption="A photo dissolves into static (adding noise), and a trained network brings "
                     "it back (removing noise, 12 steps): the model shipped with this app.")
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
st.subheader("Give a talk", anchor=False)
st.page_link(LESSON, label="Give a talk: the lesson in eight scenes", icon=":material/co_present:")
st.caption("One big picture per scene, for a projector and a room. → Space PageDown go forward, "
           "← PageUp back; nothing to wait for.")
st.subheader("The lab", anchor=False)
for path, label, icon, text in lab_pages():
    st.page_link(path, label=label, icon=icon)
    st.caption(text)
