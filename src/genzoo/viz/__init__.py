"""Pictures: image grids, latent plots, curves, and per-modality sample writers."""
