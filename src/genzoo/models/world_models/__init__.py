"""World models (Ha and Schmidhuber 2018): V, M and C.

V is the VAE family (``vae --preset world-models``) trained on the frames of recorded rollouts
(data/rollouts.py, ``gym:ENV?...`` with ``data.view=frames``); ``memory.py`` is M, an MDN-RNN
over V's codes with the actions, rewards and done flags; ``controller.py`` is C, a linear map
[z, h] -> action found by CMA-ES, scored in the real environment or in M's dream. The shipped
pipeline ``world-models/car-racing`` chains them.
"""
