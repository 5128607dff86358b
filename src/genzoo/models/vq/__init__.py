"""Vector-quantised models: the VQ-VAE (vqvae.py, registered as ``vqvae``), whose encoder maps
an image to a small map of codebook indices, and the autoregressive prior over those code maps
(prior.py, ``vq_prior``), trained as a second stage on the codes of a trained first stage and
sampled through its decoder. The quantiser is genzoo.nn.quantize, the networks genzoo.nn.conv
and genzoo.nn.transformer, so that the VQ-GAN can stand on the same pieces."""
