"""Multimodal models (the last chapter of the map): CLIP (clip.py), the KL-regularised
autoencoder of latent diffusion (kl_autoencoder.py), text-to-image latent diffusion
(latent_diffusion.py) and the unCLIP prior (unclip.py); captions and the text encoder they
share are in text.py, CLIP's image encoders in encoders.py."""
