"""What the app does with a model, one module per job: restore (the reverse process from a
noise step), inpaint (RePaint), blind (noise estimation and blind denoising), baselines (the
classical methods beside them), steps_study, evaluate (benchmarks), tiling (large pictures),
metrics (PSNR, SSIM) and pictures (checks and small changes before a run)."""
