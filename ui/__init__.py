"""Streamlit-side helpers shared by the pages (widgets and session state). Logic lives in
diffusion_core; this package only arranges it on screen."""
