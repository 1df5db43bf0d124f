"""Create in the visitor's browser: what the Python side does for it.

* :mod:`~diffusion_core.browser.export`: a conditional model as one self-contained fp32 ONNX
  file of the preconditioned ``D(x, sigma, label)`` (batch 2: the told and untold guesses in
  one call) and a small JSON file (the noise levels, the class names, the example strip),
  under ``web/app/models/<name>/`` (``python -m diffusion_core export-web``);
* :mod:`~diffusion_core.browser.create`: what the Create page needs to offer browser mode:
  whether the browser runtime (onnxruntime-web, installed by npm) and a model's export are
  there, the arguments of the ``web/app`` component, and the status it reports back;
* :mod:`~diffusion_core.browser.site`: the static site a teacher can hand out
  (``python -m diffusion_core export-site DIR``).

The JavaScript side (``web/app``: the page, the Web Worker and its sampler) mirrors
:mod:`diffusion_core.maths.samplers`; tests/test_browser_web_sampler.py holds them to the
same numbers. No streamlit here.
"""
