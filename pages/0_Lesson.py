"""Lesson: the story of diffusion in eight scenes, for a projector and a room.

One big visual per scene, at most two sentences, presenter notes off by default and at most
one control. → Space PageDown go forward, ← PageUp back (what clickers send); ``?scene=N``
opens scene N. The scenes are diffusion_core.app.lesson; the layout ui.lesson_view.
"""

import streamlit as st

from diffusion_core.app.lesson import scene_words
from ui.lesson_view import lesson_style, notes_box, open_lesson, scene_bar, scene_control, scene_visual

st.set_page_config(page_title="Lesson · Diffusion Lab", page_icon="🎓", layout="wide",
                   initial_sidebar_state="collapsed")
lesson_style()
scene, prep = open_lesson()
scene_bar(scene)

visual, side = st.columns([1.9, 1], gap="medium")
with visual:
    scene_visual(scene, prep)  # first: a live scene starts its run here
with side, st.container(key="lesson_side"):
    st.title(scene.title, anchor=False)
    st.markdown(scene_words(scene, prep))
    scene_control(scene)
    notes_box(scene)
