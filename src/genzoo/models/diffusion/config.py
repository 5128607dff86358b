"""The settings of the diffusion family and its named recipes (see :mod:`.ddpm` for the theory):
the U-Net, the noise schedule, the objective, the conditioning, the sampling defaults and the
optimiser, each default DDPM's (Ho, Jain & Abbeel 2020) unless its comment says otherwise."""
from __future__ import annotations

from dataclasses import dataclass

from genzoo.models.diffusion.samplers import SAMPLERS
from genzoo.models.diffusion.schedules import SCHEDULES


@dataclass
class DiffusionConfig:
    # the U-Net (the widths of Beres' Keras DDIM example, for 64x64 images)
    arch: str = "ddpm"                       # ddpm (Ho et al.'s U-Net) | book (Foster's DDIM U-Net)
    widths: tuple[int, ...] = (32, 64, 96)   # channels per level, top down; each level halves the side
    bottleneck: int = 128                    # channels at the lowest resolution
    blocks: int = 2                          # residual blocks per level
    attention: tuple[int, ...] = ()          # image sides whose blocks get self-attention, e.g. [16, 8]
    heads: int = 1                           # attention heads
    emb_dim: int = 32                        # size of the sinusoidal embedding of t
    dropout: float = 0.0
    image_size: int = 64                     # the recipe's side; data is adapted to it
    channels_last: bool = False              # NHWC memory layout for the U-Net (a speed option)
    # the noise schedule (DDPM: linear betas 1e-4 .. 0.02 over T = 1000 discrete steps)
    schedule: str = "linear"                 # linear | cosine | offset_cosine
    discrete: bool = True                    # train on t = i/T (True) or t ~ U(0, 1) (False)
    T: int = 1000                            # steps of a discrete schedule
    beta_start: float = 1e-4                 # linear schedule's first and last beta
    beta_end: float = 0.02
    max_signal: float = 0.95                 # offset cosine: signal rate at t = 0 ...
    min_signal: float = 0.02                 # ... and at t = 1
    # the objective
    prediction: str = "eps"                  # what the net predicts: eps | x0 | v
    loss: str = "l2"                         # l2 (DDPM's simple loss) | l1
    normalise: str = "measured"              # measured: per-channel mean/std of the first batches;
                                             # fixed: x * 2 - 1 (DDPM's [-1, 1]); none: as it is
                                             # (data already of unit variance: scaled latents)
    norm_batches: int = 20                   # training batches the statistics are measured on
    # conditioning
    conditional: bool = True                 # use the labels when the data has them
    p_uncond: float = 0.1                    # label dropped to "none" with this probability
    # sampling defaults (genzoo sample --sampler/--steps/--eta/--guidance override them)
    sampler: str = "ddim"                    # ddpm | ddim | dpm++2m
    sample_steps: int = 50                   # 0 = the sampler's own default (ddpm: T)
    eta: float = 0.0                         # DDIM noise: 0 deterministic, 1 like DDPM
    guidance: float = 1.0                    # classifier-free guidance scale w (1 = plain conditional)
    clip_denoised: bool = True               # clip each x0 guess to the data's range
    # the optimiser (DDPM: Adam 2e-4; the Keras recipe: AdamW 1e-3, weight decay 1e-4)
    lr: float = 2e-4
    weight_decay: float = 0.0

    def validate(self):
        checks = [(self.arch in ("ddpm", "book"), "arch must be ddpm or book"),
                  (self.arch != "book" or not self.attention and not self.dropout,
                   "arch=book has no attention and no dropout"),
                  (self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}"),
                  (self.prediction in ("eps", "x0", "v"), "prediction must be eps, x0 or v"),
                  (self.loss in ("l1", "l2"), "loss must be l1 or l2"),
                  (self.normalise in ("measured", "fixed", "none"),
                   "normalise must be measured, fixed or none"),
                  (self.sampler in SAMPLERS, f"sampler must be one of {', '.join(SAMPLERS)}"),
                  (len(self.widths) >= 1 and min(self.widths) > 0, "widths must be positive"),
                  (self.blocks >= 1, "blocks must be >= 1"), (self.T >= 1, "T must be >= 1"),
                  (0 <= self.p_uncond < 1, "p_uncond must be in [0, 1)"),
                  (0 < self.beta_start < self.beta_end < 1, "need 0 < beta_start < beta_end < 1"),
                  (0 < self.min_signal < self.max_signal < 1, "need 0 < min_signal < max_signal < 1"),
                  (self.emb_dim % 2 == 0, "emb_dim must be even"),
                  (self.image_size % 2 ** len(self.widths) == 0,
                   f"image_size {self.image_size} must divide by 2^{len(self.widths)} (one halving per level)")]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


PRESETS = {
    # The training recipe of Beres' Keras "Denoising Diffusion Implicit Models" example
    # (flowers, 64x64: continuous offset-cosine schedule, L1 loss on the noise, AdamW 1e-3 with
    # decay 1e-4) on genzoo's DDPM U-Net; `book` is the example's own network too.
    "keras-ddim": dict(schedule="offset_cosine", discrete=False, loss="l1", lr=1e-3,
                       weight_decay=1e-4, widths=[32, 64, 96], bottleneck=128),
    # Foster's book, ch. 8, exactly (see the module docstring).
    "book": dict(arch="book", widths=[32, 64, 96], bottleneck=128, blocks=2, emb_dim=32,
                 image_size=64, schedule="offset_cosine", discrete=False, prediction="eps",
                 loss="l1", lr=1e-3, weight_decay=1e-4, conditional=False, sampler="ddim",
                 sample_steps=20, eta=0.0, clip_denoised=False, **{"train.grad_clip": 0.0}),
    # Small enough to train in minutes on a CPU, at 32x32.
    "cpu": dict(widths=[32, 64], bottleneck=64, image_size=32, lr=1e-3),
    # A few-millisecond U-Net for the contract test and pipeline smoke runs: one block per
    # level, attention at the 4x4 level, a short schedule and few sampling steps.
    "tiny": dict(widths=[8, 16], bottleneck=16, blocks=1, attention=[4], emb_dim=8,
                 image_size=8, T=100, norm_batches=2, sample_steps=4),
}
