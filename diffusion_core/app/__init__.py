"""What the pages ask of the library, so that a page is layout and words.

Each page's settings arrive as raw values (from widgets and the session, never trusted); a
request here clamps them, plans the work and starts the background job, and the texts and
numbers the page shows are computed here too. The top layer of the library, beside ``cli``:
it may use every other sub-package, and nothing in the library uses it. No streamlit.

* :mod:`~diffusion_core.app.settings`: clamps for numbers, choices and schedules;
* :mod:`~diffusion_core.app.models`: which models and devices a page offers, opening one;
* one module per page: :mod:`~diffusion_core.app.forward` (Add noise),
  :mod:`~diffusion_core.app.restore` (Restore), :mod:`~diffusion_core.app.repair` (Repair),
  :mod:`~diffusion_core.app.train` (Train), :mod:`~diffusion_core.app.toy2d` (Why diffusion?)
  and :mod:`~diffusion_core.app.cost` (Cost of steps).
"""
