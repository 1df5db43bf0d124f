"""Networks and their loading: the U-Net, the model registry, the diffusers bridge, the 8-bit path."""
