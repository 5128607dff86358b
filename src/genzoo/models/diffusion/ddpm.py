"""Denoising diffusion (Ho, Jain & Abbeel 2020, "DDPM"; Song, Meng & Ermon 2021, "DDIM";
Nichol & Dhariwal 2021; Lu et al. 2022, "DPM-Solver++"; Ho & Salimans 2021, guidance).

Training corrupts a clean image x_0 to x_t = alpha_t x_0 + sigma_t eps at a random noise level
t and teaches a U-Net to undo it: to predict eps (DDPM's simple loss ||eps - eps_theta(x_t, t)||^2),
or x_0, or v = alpha_t eps - sigma_t x_0. Sampling starts from pure noise and removes it step by
step with a sampler (ancestral DDPM, deterministic DDIM, or the fast DPM-Solver++), each step
asking the network for its current guess of the clean image; with labels, classifier-free
guidance steers the steps towards a class.

Recipes. The defaults are DDPM's (linear betas over T = 1000, eps-prediction with the simple L2
loss, Adam 2e-4) on DDPM's U-Net (the noise level fed to every residual block, group norm,
which does not mix the images of a batch) at the Keras DDIM example's widths, conditional when
the data has labels: the design genzoo's guidance and attention options build on.
``--preset book`` is the DDIM of Foster's book exactly (ch. 8): its U-Net (``arch=book``), the
continuous offset-cosine schedule, L1 loss on the noise, AdamW(1e-3, weight decay 1e-4), EMA
0.999, batch 64, 64x64, unconditional, 20 deterministic DDIM steps with no clipping of the x0
guesses, and a loop without gradient clipping (genzoo's ddpm default clips at 1).
"""
from __future__ import annotations

import torch

from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo, Family, Objective, SampleOption
from genzoo.models.diffusion import guidance as G
from genzoo.models.diffusion.config import PRESETS, DiffusionConfig
from genzoo.models.diffusion.samplers import SAMPLERS
from genzoo.models.diffusion.schedules import Schedule
from genzoo.models.diffusion.unet import BookUNet, UNet
from genzoo.registry import register


@register("ddpm", config=DiffusionConfig, taxonomy="explicit-approximate", modality="image",
          summary="diffusion: U-Net noise predictor, linear/cosine schedules, classifier-free "
                  "guidance; samples with DDPM/DDIM/DPM-Solver++", showcase="genzoo.viz.diffusion:showcase")
class Diffusion(Family):
    train_defaults = {"ema_decay": 0.999, "batch_size": 64, "steps": 10000, "grad_clip": 1.0,
                      "precision": "auto", "sample_every": 1000, "sample_n": 16, "checkpoint_every": 1000}
    presets = PRESETS
    sample_options = (
        SampleOption("sampler", str, None, "diffusion sampler (default: the config's): " + "; ".join(
            f"{name} = {line} [{steps} steps]" for name, (_, steps, line) in SAMPLERS.items()),
            choices=tuple(SAMPLERS), fast="dpm++2m"),
        SampleOption("steps", int, None, "denoising steps (default: the sampler's)", fast=20),
        SampleOption("eta", float, None, "DDIM noise: 0 deterministic, 1 like DDPM"),
        SampleOption("guidance", float, None, "classifier-free guidance w: 0 unconditional, "
                     "1 conditional, > 1 sharper"),
        SampleOption("label", int, None, "class of every sample, a name or an index (a "
                     "conditional model; default: drawn at random)", kind="label"),
    )

    data_modality, data_name = "image", "images"    # what it diffuses (latent diffusion: latents)

    def __init__(self, config: DiffusionConfig, data: DataInfo, components=None):
        super().__init__(config, data, components)
        if data.modality != self.data_modality or len(data.shape) != 3:
            raise GenzooError(f"{self.family_name}: needs {self.data_name} (C, H, W), got "
                              f"{data.modality} {tuple(data.shape)}")
        c, h, w = data.shape
        if h % 2 ** len(config.widths) or w % 2 ** len(config.widths):
            raise GenzooError(f"ddpm: image side {h}x{w} must divide by 2^{len(config.widths)} "
                              f"(one halving per level of widths={list(config.widths)})")
        self.num_classes = data.num_classes if config.conditional else 0
        self.schedule = Schedule(config.schedule, config.discrete, config.T, config.beta_start,
                                 config.beta_end, max_signal=config.max_signal,
                                 min_signal=config.min_signal)
        self.net = self.make_net(c, h)
        if config.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        # data statistics: x_norm = (x - mean) / std per channel. Measured on the first
        # norm_batches training batches (a running average, then frozen); the EMA copy of these
        # buffers catches up within a few hundred steps thanks to its warm-up.
        self.register_buffer("data_mean", torch.full((c,), 0.5))
        self.register_buffer("data_sq", torch.full((c,), 0.5))      # E[x^2]: std 0.5 at first
        self.register_buffer("norm_seen", torch.zeros((), dtype=torch.long))

    def make_net(self, channels: int, side: int):
        config = self.config
        if config.arch == "book":
            if self.num_classes:
                raise GenzooError("ddpm: the book's U-Net is unconditional (set conditional=false)")
            return BookUNet(channels, self.schedule, tuple(config.widths), config.bottleneck,
                            config.blocks, config.emb_dim)
        return UNet(channels, tuple(config.widths), config.bottleneck, config.blocks,
                    tuple(config.attention), side, config.emb_dim, config.dropout,
                    self.num_classes, config.heads)

    @property
    def device(self) -> torch.device:
        return self.data_mean.device        # a buffer: works whatever the network is

    @classmethod
    def data_defaults(cls, config) -> dict:
        return {"image_size": config.image_size}

    # -- data normalisation ----------------------------------------------------------------
    def _stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        std = (self.data_sq - self.data_mean ** 2).clamp(min=1e-6).sqrt()
        return self.data_mean[None, :, None, None], std[None, :, None, None]

    def normalise(self, x: torch.Tensor, measure: bool = False) -> torch.Tensor:
        """Pixels in [0, 1] -> the space the diffusion runs in; ``measure`` (training) feeds the
        statistics while fewer than norm_batches batches have been seen."""
        if self.config.normalise == "fixed":
            return x * 2 - 1
        if self.config.normalise == "none":
            return x
        if measure and int(self.norm_seen) < self.config.norm_batches:
            with torch.no_grad():      # running average over batches: m += (m_batch - m) / k
                k = float(self.norm_seen + 1)
                self.data_mean.add_((x.float().mean((0, 2, 3)) - self.data_mean) / k)
                self.data_sq.add_((x.float().pow(2).mean((0, 2, 3)) - self.data_sq) / k)
                self.norm_seen.add_(1)
        mean, std = self._stats()
        return (x - mean) / std

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.normalise == "fixed":
            return (x + 1) / 2
        if self.config.normalise == "none":
            return x
        mean, std = self._stats()
        return x * std + mean

    # -- training --------------------------------------------------------------------------
    def _alpha_sigma(self, t: torch.Tensor):
        alpha, sigma = self.schedule.alpha_sigma(t)
        return alpha.view(-1, 1, 1, 1), sigma.view(-1, 1, 1, 1)

    def q_sample(self, x0, t, eps):
        """Forward noising x_t = alpha_t x_0 + sigma_t eps (DDPM eq. 4)."""
        alpha, sigma = self._alpha_sigma(t)
        return alpha * x0 + sigma * eps

    def loss(self, batch):
        x0 = self.normalise(batch["x"], measure=self.training)
        n = len(x0)
        t = self.schedule.sample_t(n, x0.device)
        eps = torch.randn_like(x0)
        x_t = self.q_sample(x0, t, eps)
        y = self.condition(batch)
        if y is not None:          # classifier-free guidance: "no condition" now and then
            y = G.drop_labels(y, self.config.p_uncond if self.training else 0.0,
                              self.null_condition(y))
        out = self.eps_net(x_t, t, y)
        alpha, sigma = self._alpha_sigma(t)
        target = {"eps": eps, "x0": x0, "v": alpha * eps - sigma * x0}[self.config.prediction]
        err = (out - target).abs() if self.config.loss == "l1" else (out - target).pow(2)
        return {"loss": err.mean()}

    def condition(self, batch) -> torch.Tensor | None:
        """What the network is conditioned on in training: the labels, where it uses them."""
        return batch["y"] if self.num_classes and "y" in batch else None

    def null_condition(self, y: torch.Tensor) -> torch.Tensor:
        """The "no condition" token(s) in the form of ``y``: the extra label row."""
        return torch.full_like(y, self.num_classes)

    def objectives(self):
        opt = "adamw" if self.config.weight_decay > 0 else "adam"
        return [Objective("model", self.loss, list(self.parameters()), lr=self.config.lr,
                          weight_decay=self.config.weight_decay, optimizer=opt)]

    def eps_net(self, x_t, t, y=None) -> torch.Tensor:
        """The network's output (eps, x0 or v as configured), in float32."""
        if self.config.channels_last:
            x_t = x_t.contiguous(memory_format=torch.channels_last)
        return self.net(x_t, t, y).float().contiguous()

    # -- the denoiser the samplers see -------------------------------------------------------
    def split(self, out, x_t, alpha, sigma):
        """The network's output -> (x0_hat, eps_hat), whatever it predicts (v: Salimans & Ho 2022)."""
        p = self.config.prediction
        if p == "eps":
            return (x_t - sigma * out) / alpha, out
        if p == "x0":
            return out, (x_t - alpha * out) / sigma
        return alpha * x_t - sigma * out, sigma * x_t + alpha * out    # alpha^2 + sigma^2 = 1

    def denoiser(self, y: torch.Tensor | None = None, w: float = 1.0, clip: bool = True):
        """denoise(x_t, t) -> (x0_hat, eps_hat), guided by labels ``y`` with scale ``w``."""
        lo, hi = None, None
        if clip:
            lo, hi = self.normalise_bounds()

        def denoise(x_t: torch.Tensor, t: torch.Tensor):
            n = len(x_t)
            tt = t.to(x_t.device).float().expand(n)
            if y is None or w == 0:
                out = self.eps_net(x_t, tt, None)
            elif w == 1:
                out = self.eps_net(x_t, tt, y)
            else:                         # both predictions in one batch
                null = self.null_condition(y)
                both = self.eps_net(torch.cat([x_t, x_t]), torch.cat([tt, tt]), torch.cat([null, y]))
                out = G.guided(*both.chunk(2), w)
            alpha, sigma = self._alpha_sigma(tt)
            x0, eps = self.split(out, x_t, alpha, sigma)
            if clip:
                x0 = torch.maximum(torch.minimum(x0, hi), lo)
                eps = (x_t - alpha * x0) / sigma
            return x0, eps
        return denoise

    def normalise_bounds(self):
        """Where the pixel values 0 and 1 land after normalisation, per channel."""
        c = self.data.shape[0]
        return (self.normalise(torch.zeros(1, c, 1, 1, device=self.device)),
                self.normalise(torch.ones(1, c, 1, 1, device=self.device)))

    def labels(self, n: int, label, generator) -> torch.Tensor | None:
        if not self.num_classes:
            if label is not None:
                raise GenzooError("ddpm: this model was trained without labels; it takes no --label")
            return None
        if label is None:                     # a class drawn at random for each sample
            return torch.randint(self.num_classes, (n,), generator=generator, device=self.device)
        y = torch.as_tensor(label, device=self.device).long().expand(n).clone()
        if (y < 0).any() or (y >= self.num_classes).any():
            raise GenzooError(f"ddpm: label {label} is not a class (0..{self.num_classes - 1})")
        return y

    @torch.no_grad()
    def sample(self, n, generator=None, sampler=None, steps=None, eta=None, guidance=None,
               label=None, noise=None, record=None):
        """n images in [0, 1]. ``noise`` gives x_1 (else drawn); ``record`` (a list) receives
        each step's {t, x, x0} (normalised space)."""
        if noise is None:
            noise = torch.randn(n, *self.data.shape, generator=generator, device=self.device)
        y = self.labels(n, label, generator)
        return self.generate(n, y, generator, sampler, steps, eta, guidance, noise, record).clamp(0, 1)

    def generate(self, n, y, generator=None, sampler=None, steps=None, eta=None, guidance=None,
                 noise=None, record=None) -> torch.Tensor:
        """n denoised items in the data's scale (not clamped), conditioned on ``y``."""
        cfg = self.config
        sampler = sampler or cfg.sampler
        if sampler not in SAMPLERS:
            raise GenzooError(f"{self.family_name}: unknown sampler {sampler!r} "
                              f"(samplers: {', '.join(SAMPLERS)})")
        fn, default_steps, _ = SAMPLERS[sampler]
        if not steps:     # the config's steps for its own sampler, else the sampler's default
            if self.schedule.discrete:      # ddpm's 1000 means every step of the T grid
                default_steps = min(default_steps, self.schedule.T)
            steps = cfg.sample_steps if sampler == cfg.sampler and cfg.sample_steps else default_steps
        if self.schedule.discrete and steps > self.schedule.T or steps < 1:
            raise GenzooError(f"{self.family_name}: --steps {steps} must be in 1..{self.schedule.T}")
        w = cfg.guidance if guidance is None else guidance
        if noise is None:
            noise = torch.randn(n, *self.data.shape, generator=generator, device=self.device)
        denoise = self.denoiser(y, w, cfg.clip_denoised)
        x0 = fn(denoise, noise, self.schedule, steps, generator=generator,
                eta=cfg.eta if eta is None else eta, record=record)
        return self.denormalise(x0)

    def evaluate(self, batch):
        return self.loss(batch)
