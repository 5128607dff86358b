"""Generative adversarial networks: the implicit-density chapter of the map.

``adversarial.py`` holds what every image GAN shares (the two players, scaling, sampling, the
collapse indicator); ``dcgan.py`` the original minimax game with a binary classifier,
``wgan_gp.py`` the Wasserstein game with a gradient-penalised critic, and ``conditional.py``
the WGAN-GP conditioned on a class label. The networks and the penalty are in genzoo.nn.gan.
"""
