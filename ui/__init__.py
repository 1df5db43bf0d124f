"""Streamlit-side helpers shared by the pages: widgets, session state and drawing. Logic lives
in diffusion_core (``diffusion_core.app`` for what the pages ask); this package only arranges
it on screen.

* :mod:`ui.state`: the session keys shared by every page, their defaults, binding widgets;
* :mod:`ui.picker`: the image picker (a built-in sample or an upload);
* :mod:`ui.models`: model and device menus, loading a model from the one shared cache;
* :mod:`ui.jobs`: a page's background job: start button, progress row, its end;
* :mod:`ui.figures`: charts and picture previews;
* :mod:`ui.nav`, :mod:`ui.session`, :mod:`ui.scrubber`: sidebar links, is the browser still
  there, the in-browser forward-process scrubber.
"""
