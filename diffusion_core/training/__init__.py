"""Training the denoiser: the loop, its data, the digits set, the Train page's presets and runs."""
