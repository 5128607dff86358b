"""Diffusion models: the U-Net (unet.py), noise schedules (schedules.py), samplers
(samplers.py), classifier-free guidance (guidance.py) and the family tying them together
(ddpm.py, registered as ``ddpm``). Network, schedule and sampler are separate pieces: a net
trained under one schedule can be sampled by any sampler at any number of steps."""
