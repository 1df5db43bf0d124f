"""What the app does with a model: restore, repair (inpaint, blind denoise), evaluate,
the steps study, tiling."""
