"""The Lesson page's Streamlit side: the keys a clicker sends, the scene index, the layout for
a projector (no sidebar, large type, everything inside the window) and each scene's visual and
control. The scenes, their words and pictures are :mod:`diffusion_core.app.lesson`.

Keys: a small ``st.components.v2`` component (inline JavaScript, nothing loaded from outside)
listens on the page for → Space PageDown (forward) and ← PageUp (back), the keys clickers
send, and tells the server; the Back and Next buttons do the same. Keys typed into a text
field, or on a focused slider, are left alone (PageUp and PageDown always move). The
forward scrubber of scene 1 is an iframe: a small script added to it passes the same keys up
to the page.
"""

from __future__ import annotations

import functools

import streamlit as st

from diffusion_core.app import lesson
from diffusion_core.app.lesson import (
    BELL_STEPS,
    N_SCENES,
    SCENE_PARTS,
    SCENES,
    STEER_WS,
    Scene,
    scene_index,
)
from diffusion_core.app.models import ModelLoadError, open_model, run_device
from ui.job_watch import watch
from ui.scrubber import scrubber_html
from ui.session import session_alive_check

K_SCENE, K_ENTRY, K_INDEX = "lesson_scene", "lesson_entry", "lesson_index"
K_NOTES, K_BELL, K_GUIDANCE = "lesson_notes", "lesson_bell_step", "lesson_guidance"
K_RESTORE, K_CREATE, K_SEED = "lesson_restore_job", "lesson_create_job", "lesson_create_seed"
K_RESTART, K_SEEN = "lesson_restart", "lesson_keys_seen"
VISUAL_TOP_PX = 78  # the window height above the visual (the scene bar and margins)
LIVE_EVERY_S = 0.5  # a live scene's picture is redrawn at most this often while it runs

KEYS_JS = r"""
export default function(component) {
  // Called again whenever the page is drawn: one listener at a time, which always knows the
  // scene shown and the newest way to tell the server. A press asks for a scene by number
  // (so a press sent twice does no harm); until the page comes back showing it, or showing
  // that the server took the press, it is sent again (at most 3 times): a press that met a
  // rerun already on its way could otherwise be lost.
  const { data, setStateValue } = component;
  const nav = window.__diffusionLabLesson = window.__diffusionLabLesson || {seq: 0};
  nav.scene = data.scene;
  nav.last = data.count - 1;
  nav.send = setStateValue;
  const send = (p) => {
    nav.seq += 1;
    p.seq = nav.seq;
    p.tries += 1;
    nav.scene = p.scene;  // a second press before the page is redrawn goes on from here
    clearTimeout(nav.timer);
    nav.timer = setTimeout(retry, 1500);
    nav.send('target', {scene: p.scene, seq: p.seq});
  };
  const retry = () => {
    const p = nav.pending;
    if (!p) return;
    if (p.tries >= 3) { nav.pending = null; return; }
    send(p);
  };
  if (nav.pending) {
    const p = nav.pending;
    if (data.seen >= p.seq || data.scene === p.scene) {
      nav.pending = null;  // taken
      clearTimeout(nav.timer);
    } else if (data.seen >= p.first) {
      nav.scene = p.scene;  // the first presses of a quick burst taken: the rest is on its way
    } else if (data.scene === p.from) {
      retry();  // redrawn without it
    } else {
      nav.pending = null;  // something else (a button) moved the lesson meanwhile
      clearTimeout(nav.timer);
    }
  }
  const FORWARD = ['ArrowRight', 'PageDown', ' ', 'Spacebar'];
  const BACK = ['ArrowLeft', 'PageUp'];
  const TEXT = ['text', 'search', 'email', 'number', 'password', 'url', 'tel', 'range'];
  const typing = (el) => !!el && (el.isContentEditable ||
    ['TEXTAREA', 'SELECT'].includes(el.tagName) ||
    (el.tagName === 'INPUT' && TEXT.includes((el.type || 'text').toLowerCase())) ||
    (el.getAttribute && el.getAttribute('role') === 'slider'));
  const onKey = (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const forward = FORWARD.includes(e.key), back = BACK.includes(e.key);
    if (!forward && !back) return;
    const always = e.key === 'PageDown' || e.key === 'PageUp';
    if (!always && typing(e.target)) return;
    e.preventDefault();
    e.stopPropagation();
    if (e.repeat) return;
    const to = Math.max(0, Math.min(nav.last, nav.scene + (forward ? 1 : -1)));
    if (to === nav.scene) return;
    const burst = nav.pending;  // presses before the page came back belong together
    nav.pending = {scene: to, from: burst ? burst.from : nav.scene,
                   first: burst ? burst.first : nav.seq + 1, seq: 0, tries: 0};
    send(nav.pending);
  };
  if (nav.listener) window.removeEventListener('keydown', nav.listener, true);
  nav.listener = onKey;
  window.addEventListener('keydown', onKey, true);
  document.documentElement.dataset.lessonKeys = String(data.scene);  // listening (for tests)
  return () => {
    if (nav.listener) window.removeEventListener('keydown', nav.listener, true);
    nav.listener = null;
    clearTimeout(nav.timer);
    delete document.documentElement.dataset.lessonKeys;
  };
}
"""

# Passes the lesson's keys from inside the scrubber's iframe to the page (same origin).
SCRUBBER_KEYS = r"""<script>
document.addEventListener('keydown', (e) => {
  const keys = ['ArrowRight', 'PageDown', ' ', 'ArrowLeft', 'PageUp'];
  if (!keys.includes(e.key) || e.altKey || e.ctrlKey || e.metaKey) return;
  const always = e.key === 'PageDown' || e.key === 'PageUp';
  if (!always && e.target && e.target.id === 't') return;  // arrows on its own slider
  e.preventDefault();
  try { window.parent.document.dispatchEvent(new KeyboardEvent('keydown', {key: e.key})); }
  catch (err) { /* not embedded */ }
}, true);
</script>"""

# The scrubber, big: the picture fills the frame's height (the frame fills the window).
SCRUBBER_CSS = """
 body{overflow:hidden;color:#111}
 #controls{margin:4px 0}
 button{font-size:22px;padding:6px 18px}
 #tlabel{font-size:20px;min-width:170px!important}
 #mix{font-size:24px!important;margin:4px 0}
 #xt{height:calc(100vh - 118px)!important;width:auto!important;max-width:calc(100vw - 8px);
     object-fit:contain}
"""

LESSON_CSS = f"""<style>
header[data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stDecoration"],
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"] {{display: none !important;}}
[data-testid="stMainBlockContainer"], .block-container {{
  padding: 0.5rem 1.6rem 0.2rem 1.6rem !important; max-width: none !important;}}
[data-testid="stMain"] {{color: #111;}}
.st-key-lesson_keys {{display: none !important;}}
.st-key-lesson_side {{max-height: calc(100vh - {VISUAL_TOP_PX}px); overflow-y: auto; overflow-x: hidden;}}
.st-key-lesson_index button {{padding: 0.1rem 0.2rem; min-height: 2.2rem;}}
.st-key-lesson_index button p {{font-size: 0.95rem; white-space: nowrap;}}
.st-key-lesson_back button p, .st-key-lesson_next button p {{font-size: 1.5rem; line-height: 1;}}
.st-key-lesson_side h1 {{font-size: max(2.5rem, 2.6vw); line-height: 1.15; padding: 0.2rem 0 0.6rem 0;
  color: #111;}}
.st-key-lesson_side [data-testid="stMarkdownContainer"] p {{
  font-size: max(1.55rem, 1.6vw); line-height: 1.4; color: #111;}}
.st-key-lesson_side [data-testid="stCaptionContainer"] p {{font-size: max(1.05rem, 1vw); color: #333;}}
.st-key-lesson_side label p {{font-size: max(1.2rem, 1.2vw) !important; color: #111;}}
.st-key-lesson_side button p {{font-size: max(1.3rem, 1.3vw);}}
.st-key-lesson_notes_box [data-testid="stMarkdownContainer"] li,
.st-key-lesson_notes_box [data-testid="stMarkdownContainer"] p {{font-size: max(1rem, 0.95vw);
  line-height: 1.35;}}
[class*="st-key-lesson_visual"] img {{
  max-height: calc(100vh - {VISUAL_TOP_PX + 10}px); width: 100%; height: auto;
  object-fit: contain; object-position: center top;}}
[class*="st-key-lesson_visual"] iframe {{height: calc(100vh - {VISUAL_TOP_PX + 10}px) !important;}}
</style>"""


def lesson_css() -> str:
    """The lesson's style sheet: fixed CSS built from numeric constants, no user text."""
    return LESSON_CSS


def lesson_style() -> None:
    """The lesson's look: no header or sidebar, large type, visuals that fit the window."""
    st.html(lesson_css())


@functools.lru_cache(maxsize=1)  # declared once per process (not a model cache)
def _keys_component():
    return st.components.v2.component("diffusion_lab_lesson_keys", js=KEYS_JS)


# ---------------------------------------------------------------------- moving


def _go_to(index: int) -> None:
    """Open scene ``index`` (0-based): a live run of the scene being left is stopped."""
    ss = st.session_state
    index = max(0, min(int(index), N_SCENES - 1))
    if index == ss.get(K_SCENE):
        return
    for key in (K_RESTORE, K_CREATE):
        job = ss.get(key)
        if job is not None and not job.done:
            job.stop()
    ss[K_SCENE] = index
    ss[K_ENTRY] = ss.get(K_ENTRY, 0) + 1


def _on_key() -> None:
    """A key asked for a scene (its number is in the keyboard component's state, with the
    press's sequence number, which the page sends back as taken)."""
    ss = st.session_state
    got = ss.get("lesson_keys")
    target = getattr(got, "target", None) if got is not None else None
    if isinstance(target, dict) and isinstance(target.get("scene"), int):
        seq = target.get("seq")
        ss[K_SEEN] = max(ss.get(K_SEEN, 0), seq if isinstance(seq, int) else 0)
        _go_to(target["scene"])


def open_lesson() -> tuple[Scene, lesson.LessonPrep]:
    """The scene to show (``?scene=N`` on the first run of a session, then the session's
    own; a bad N gives scene 1 and a short message), the keyboard listener, and the server's
    warm-up (started on the first visit, shared by every visitor)."""
    ss = st.session_state
    if K_SCENE not in ss:
        index, message = scene_index(st.query_params.get("scene"))
        ss[K_SCENE], ss[K_ENTRY] = index, 0
        if message:
            st.toast(message, icon=":material/info:")
    st.query_params["scene"] = str(ss[K_SCENE] + 1)
    _keys_component()(key="lesson_keys", on_target_change=_on_key,
                      data={"scene": ss[K_SCENE], "count": N_SCENES, "seen": ss.get(K_SEEN, 0)})
    prep = lesson.shared_prep(run_device("auto"))
    return SCENES[ss[K_SCENE]], prep


def scene_bar(scene: Scene) -> None:
    """Back, the scene index (where you are, highlighted; click to jump), Next, the
    presenter-notes switch and the way back to the lab. The index is buttons (each a jump,
    holding no value of its own that a stale browser could send back)."""
    i = st.session_state[K_SCENE]
    with st.container(key="lesson_bar"):
        back, index, nxt, notes, lab = st.columns([0.75, 8, 0.75, 1.25, 0.7],
                                                  vertical_alignment="center")
        back.button("←", key="lesson_back", help="Back (← or PageUp)", disabled=i == 0,
                    on_click=_go_to, args=(i - 1,), width="stretch")
        with index.container(key=K_INDEX, horizontal=True, gap="small", wrap=False):
            for k, s in enumerate(SCENES):
                st.button(f"{k + 1} {s.short}", key=f"lesson_go_{k}", on_click=_go_to, args=(k,),
                          type="primary" if k == i else "secondary", width="stretch")
        nxt.button("→", key="lesson_next", help="Next (→, Space or PageDown)",
                   disabled=i == N_SCENES - 1, on_click=_go_to, args=(i + 1,), width="stretch")
        notes.toggle("Notes", key=K_NOTES, help="Presenter notes for this scene (off by default)")
        try:
            lab.page_link("app.py", label="Lab", icon=":material/home:")
        except st.errors.StreamlitAPIException:  # run on its own (AppTest): no app around it
            lab.caption("Lab")


def notes_box(scene: Scene) -> None:
    """The presenter's notes, when switched on."""
    if st.session_state.get(K_NOTES):
        with st.container(border=True, key="lesson_notes_box"):
            st.markdown(scene.notes)


# ---------------------------------------------------------------------- the visuals


def _image(scene: Scene, svg: str) -> None:
    st.image(svg, alt=scene.alt, width="stretch")


def _waiting(scene: Scene, prep: lesson.LessonPrep, part: str | None) -> None:
    """The scene's "getting ready" card, redrawn until its part is there (then the whole
    page shows the scene)."""
    @st.fragment(run_every=1.0)
    def card() -> None:
        if part is not None and prep.part(part) is not None:
            st.rerun()
        st.image(lesson.preparing_svg(scene, prep), alt=f"{scene.title}: being prepared.",
                 width="stretch")

    card()


def scene_visual(scene: Scene, prep: lesson.LessonPrep) -> None:
    """The scene's one big visual (in a container keyed ``lesson_visual_<scene>``)."""
    with st.container(key=f"lesson_visual_{scene.key}"):
        part = SCENE_PARTS.get(scene.key)
        if part is not None and prep.part(part) is None and scene.key != "gan":
            _waiting(scene, prep, part)
            return
        {"dissolve": _dissolve, "bell": _bell, "guess": _guess, "restore": _restore,
         "create": _create, "steer": _steer, "gan": _gan, "cost": _cost}[scene.key](scene, prep)


def _dissolve(scene: Scene, prep: lesson.LessonPrep) -> None:
    photo = prep.part("photo")
    if "dissolve_html" not in prep.cache:
        prep.cache["dissolve_html"] = dissolve_html(photo)
    st.iframe(dissolve_html(photo, prep.cache), height=600, alt=scene.alt)


def dissolve_html(photo: dict, cache: dict | None = None) -> str:
    """The forward scrubber's page for the lesson: ui.scrubber.scrubber_html (numbers and a
    validated schedule name only) with the lesson's fixed CSS and key script added; taken
    from ``cache`` when it is there."""
    if cache is not None and "dissolve_html" in cache:
        return cache["dissolve_html"]
    html = scrubber_html(photo["x0"], photo["noise"], photo["schedule"], t0=0,
                         presenter=True, gray=photo["x0"].shape[0] == 1)
    return html.replace("</style>", SCRUBBER_CSS + "</style>").replace(
        "</body>", SCRUBBER_KEYS + "</body>")


def _bell(scene: Scene, prep: lesson.LessonPrep) -> None:
    figures = prep.part("bell")
    step = st.session_state.get(K_BELL, BELL_STEPS[0])
    _image(scene, figures.get(step, figures[BELL_STEPS[0]]))


def _guess(scene: Scene, prep: lesson.LessonPrep) -> None:
    _image(scene, prep.part("guesses"))


def _steer(scene: Scene, prep: lesson.LessonPrep) -> None:
    figures = prep.part("steer")["figures"]
    w = st.session_state.get(K_GUIDANCE, STEER_WS[0])  # any other value: the first figure
    _image(scene, figures.get(w if isinstance(w, (int, float)) else None,
                              figures[float(STEER_WS[0])]))


def _cost(scene: Scene, prep: lesson.LessonPrep) -> None:
    _image(scene, prep.part("cost")["figure"])


def _gan(scene: Scene, prep: lesson.LessonPrep) -> None:
    if prep.part("gan") is not None or prep.problem("gan"):
        svg = lesson.gan_svg(prep) if prep.part("gan") is not None else None
        _image(scene, svg or lesson.preparing_svg(scene, prep))
        return

    @st.fragment(run_every=1.5)
    def training() -> None:  # the models learn in the background: show how far they got
        if prep.part("gan") is not None:
            st.rerun()
        svg = lesson.gan_svg(prep)
        st.image(svg or lesson.preparing_svg(scene, prep), width="stretch",
                 alt=("The three models, still learning: their samples so far over the ring "
                      "of 8 clusters." if svg else f"{scene.title}: being prepared."))

    training()


# ---------------------------------------------------------------------- the live scenes


def _fresh(key: str) -> bool:
    """Whether the live scene's run should start now: none yet, one from an earlier visit
    of the scene (stopped when the scene was left), or Again / New ones was pressed."""
    ss = st.session_state
    job = ss.get(key)
    if ss.pop(K_RESTART, False):
        if job is not None and not job.done:
            job.stop()
        return True
    return job is None or job.settings.get("entry") != ss.get(K_ENTRY)


def _start(key: str, start) -> None:
    """Start a live run (``start(alive, settings)`` returns the job); a model that cannot
    be loaded leaves its sentence instead."""
    ss = st.session_state
    try:
        ss[key] = start(session_alive_check(), {"entry": ss.get(K_ENTRY)})
        ss.pop(f"{key}_error", None)
    except ModelLoadError as e:
        ss[key], ss[f"{key}_error"] = None, str(e)


def _live(scene: Scene, key: str, figure) -> None:
    """The live scene's picture: redrawn while its run goes, the finished one after."""
    ss = st.session_state
    if ss.get(f"{key}_error"):
        _image(scene, lesson.message_figure(["This scene cannot be shown",
                                             *lesson._wrap(ss[f"{key}_error"], 56)]))
        return
    job = ss.get(key)
    if job is not None and job.done:
        _image(scene, figure(job, None))
        return
    watch(lambda: ss.get(key), lambda j, snap: _image(scene, figure(j, snap)), every=LIVE_EVERY_S,
          key=key)


def _restore(scene: Scene, prep: lesson.LessonPrep) -> None:
    info = lesson.lesson_photo_model()
    if info is None:
        _image(scene, lesson.message_figure(["This scene cannot be shown",
                                             "No photo model is installed (see the README)."]))
        return
    if _fresh(K_RESTORE):
        photo = prep.part("photo")["x0"]
        plan = lesson.restore_plan(lesson.live_speed(prep, "restore"),
                                   photo.shape[-2] / photo.shape[-1])
        device = run_device("auto")
        _start(K_RESTORE, lambda alive, settings: lesson.start_restore(
            open_model(info.name, device), photo, plan, device, alive, settings))
    _live(scene, K_RESTORE, lesson.restore_figure)


def _create(scene: Scene, prep: lesson.LessonPrep) -> None:
    info = lesson.lesson_create_model()
    if info is None:
        _image(scene, lesson.message_figure(["This scene cannot be shown",
                                             "No model that draws on request is installed."]))
        return
    if _fresh(K_CREATE):
        ss = st.session_state
        steps = lesson.create_plan(lesson.live_speed(prep, "create"), info)
        device = run_device("auto")
        _start(K_CREATE, lambda alive, settings: lesson.start_create(
            open_model(info.name, device), info, steps, ss.get(K_SEED, 0), device, alive,
            settings))
    _live(scene, K_CREATE, lesson.create_figure)


# ---------------------------------------------------------------------- the one control


def _restart(seed_step: int = 0) -> None:
    ss = st.session_state
    ss[K_RESTART] = True
    ss[K_SEED] = ss.get(K_SEED, 0) + seed_step


def scene_control(scene: Scene) -> None:
    """The scene's one control (if it has one), and a live scene's status line."""
    ss = st.session_state
    if scene.key == "bell":
        st.select_slider("Noise step", BELL_STEPS, key=K_BELL, value=ss.get(K_BELL, 0),
                         help="0 is the clean photo; 1000 is the last step (pure static).")
    elif scene.key == "steer":
        st.select_slider("Guidance: how hard to push towards the request", list(STEER_WS),
                         key=K_GUIDANCE, value=ss.get(K_GUIDANCE, STEER_WS[0]),
                         format_func=lambda w: f"{w:g}")
    elif scene.key in ("restore", "create"):
        key = K_RESTORE if scene.key == "restore" else K_CREATE
        job = ss.get(key)
        st.button("▶ Again" if scene.key == "restore" else "▶ New ones", key=f"{key}_again",
                  on_click=_restart, args=(0 if scene.key == "restore" else 1,),
                  disabled=job is not None and not job.done)
        done = job is not None and job.done
        with st.container(key=f"lesson_status_{'done' if done else 'running'}_{scene.key}"):
            st.caption(lesson.live_status(job))
