"""Diffusion Lab core library: schedules, forward process, denoisers, samplers, training.

This package never imports streamlit; pages, the CLI and the tests all call into it.
"""

__version__ = "0.1.0"
