"""The diffusion maths: noise schedules, the forward process, EDM preconditioning and samplers."""
