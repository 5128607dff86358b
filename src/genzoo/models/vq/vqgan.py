"""VQ-GAN (Esser, Rombach & Ommer 2021, "Taming Transformers for High-Resolution Image
Synthesis"), first stage: the VQ-VAE's encoder, codebook and decoder, trained to reconstruct
*perceptually* and adversarially so that a short code map still decodes to sharp images.

The autoencoder minimises L = L_rec + w_p L_perc + L_codebook + lambda L_GAN with
- L_rec = |x - x_hat| (L1), L_perc a distance between the feature maps of a fixed network
  (genzoo.nn.vqgan: a run genzoo trained, e.g. a classifier, named by ``perceptual``; no
  downloaded VGG; without one the term is off);
- L_GAN = -E[D(x_hat)] from a PatchGAN discriminator D (hinge loss for D), switched on only
  after ``disc_start`` training steps (the objective's ``start``: D and its optimiser stay
  untouched before; the autoencoder reads the step as ``steps_done``, the reference code's
  ``global_step``): a discriminator that starts against a blurry, untrained decoder only
  adds noise, and switching it on too early (or without the adaptive
  weight) makes reconstructions worse, the trap users of the reference code report;
- lambda = |grad_{G_L} (L_rec + w_p L_perc)| / (|grad_{G_L} L_GAN| + 1e-4) at the decoder's last
  layer G_L, times ``disc_weight``: the adversarial gradient is kept the size of the
  reconstruction's whatever the scales of the two losses.
Codebook collapse has the VQ-VAE's guard (dead codes restarted onto encoder outputs).

Stage 2 is the ``vq_prior`` family (a GPT over the code maps, optionally class-conditional),
which stands on a vqgan run exactly as on a vqvae run; the pipeline ``vq-gan`` trains both.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from genzoo.config import RunRef
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo, Objective
from genzoo.models.vq.vqvae import PRESETS as VQVAE_PRESETS
from genzoo.models.vq.vqvae import VQVAE, VQVAEConfig
from genzoo.nn.gan import hinge_losses
from genzoo.nn.vqgan import FeatureTaps, PatchDiscriminator, adaptive_weight, perceptual_distance
from genzoo.registry import register


@dataclass
class VQGANConfig(VQVAEConfig):
    rec_loss: str = "l1"                # l1 | mse
    perceptual: RunRef | None = None    # a trained run whose features(x) give the feature maps
    perceptual_weight: float = 1.0
    disc_start: int = 2000              # training steps before D is switched on
    disc_weight: float = 0.8            # times the adaptive lambda
    disc_width: int = 64                # PatchGAN: channels of its first layer
    disc_layers: int = 3                # PatchGAN: stride-2 layers (3: 70x70 patches)
    disc_lr: float | None = None        # D's learning rate (None: lr)
    beta1: float = 0.5                  # Adam, both players (the reference code's (0.5, 0.9))
    beta2: float = 0.9

    def validate(self):
        super().validate()
        if self.rec_loss not in ("l1", "mse"):
            raise ValueError(f"rec_loss must be l1 or mse, got {self.rec_loss!r}")
        if self.disc_start < 0 or self.disc_weight < 0 or self.perceptual_weight < 0:
            raise ValueError("disc_start, disc_weight and perceptual_weight must be >= 0")
        if self.disc_width < 1 or self.disc_layers < 1:
            raise ValueError("disc_width and disc_layers must be >= 1")
        if self.image_size < 2 ** (self.disc_layers + 2):
            raise ValueError(f"disc_layers {self.disc_layers} halve a {self.image_size}x"
                             f"{self.image_size} image too often (at most "
                             f"{max(1, self.image_size.bit_length() - 3)})")


PRESETS = {
    "tiny": {**VQVAE_PRESETS["tiny"], "disc_width": 8, "disc_layers": 1, "disc_start": 2},
    # the Sonnet widths of the VQ-VAE (CPU budgets), a 2-layer PatchGAN for 32x32 images
    "small": {**VQVAE_PRESETS["small"], "disc_layers": 2},
}


@register("vqgan", config=VQGANConfig, taxonomy="explicit-approximate", modality="image",
          summary="VQ-GAN first stage: VQ-VAE + perceptual loss + PatchGAN with adaptive "
                  "weight; prior: vq_prior", showcase="genzoo.viz.vq:vqgan_showcase")
class VQGAN(VQVAE):
    presets = PRESETS
    train_defaults = {**VQVAE.train_defaults, "batch_size": 32,
                      "precision": "auto"}                # bf16 1.8x (advanced_gans.md)
    optional_components = ("perceptual",)

    def __init__(self, config: VQGANConfig, data: DataInfo, components=None):
        super().__init__(config, data, components)
        self.D = PatchDiscriminator(data.shape[0], config.disc_width, config.disc_layers)
        self.register_buffer("lam", torch.zeros(()))           # the last adaptive weight
        self.taps = None
        if "perceptual" in self.components:
            net = self.components["perceptual"]
            if not hasattr(net, "features"):
                raise GenzooError(f"vqgan: perceptual={config.perceptual} is a "
                                  f"{net.family_name} run, which has no features(x) to compare "
                                  f"(train a classifier on the data and name its run)")
            if net.data.shape[0] != data.shape[0]:
                raise GenzooError(f"vqgan: perceptual={config.perceptual} was trained on "
                                  f"{net.data.shape[0]}-channel images, this data has "
                                  f"{data.shape[0]} channels")
            side = tuple(net.data.shape[1:])

            def features(x):                # the feature network sees images at its own size
                if tuple(x.shape[-2:]) != side:
                    x = F.interpolate(x, size=side, mode="bilinear", align_corners=False)
                return net.features(x)
            self.taps = FeatureTaps(net, features)

    @property
    def disc_on(self) -> bool:
        """Whether the adversarial term is on: from step ``disc_start`` (counted by the Trainer,
        which also starts D's objective there)."""
        return self.steps_done >= self.config.disc_start

    def _load_from_state_dict(self, state, prefix, *args, **kwargs):
        # checkpoints written before the Trainer counted steps kept the count in a buffer
        state.pop(prefix + "steps_done", None)
        super()._load_from_state_dict(state, prefix, *args, **kwargs)

    # -- the autoencoder's loss ----------------------------------------------------------
    def reconstruction(self, x, x_hat) -> tuple[torch.Tensor, dict]:
        """L_rec + w_p L_perc (what the adaptive weight balances against), and its parts."""
        cfg = self.config
        diff = x_hat.float() - x
        rec = diff.abs().mean() if cfg.rec_loss == "l1" else diff.square().mean()
        logs = {"recon": rec.detach(), "recon_mse": diff.square().mean().detach()}
        if self.taps is not None and cfg.perceptual_weight > 0:
            perc = perceptual_distance(self.taps, x, x_hat).mean()
            logs["perceptual"] = perc.detach()
            rec = rec + cfg.perceptual_weight * perc
        return rec, logs

    def autoencoder_loss(self, batch):
        cfg = self.config
        x = batch["x"]
        on = self.disc_on
        # with D on, the adaptive weight differentiates through the decoder and D once more
        # than a torch.compile'd graph allows: both then run uncompiled in this step
        q = self.quantizer(self.encode(x))
        x_hat = (self.decoder.forward if on else self.decoder)(q.z_q) + 0.5    # as decode()
        nll, logs = self.reconstruction(x, x_hat)
        loss = nll + q.loss
        logs.update(recon_nmse=logs["recon_mse"] / self.variance(x).detach(), **q.logs())
        if on:
            g_loss = -self.D.forward(x_hat * 2 - 1).float().mean()
            if torch.is_grad_enabled():     # (a loss evaluated without gradients: the last one)
                self.lam.copy_(adaptive_weight(nll, g_loss, self.decoder.last_layer.weight))
            lam = cfg.disc_weight * self.lam
            loss = loss + lam * g_loss
            logs.update(g_loss=g_loss.detach(), adaptive_weight=lam.clone())
        return {"loss": loss, **logs}

    # -- the discriminator's loss --------------------------------------------------------
    @torch.no_grad()
    def reconstruct(self, x):
        """x_hat through the nearest codes, without moving the codebook's statistics."""
        return self.decode(self.quantizer.lookup(self.quantizer.nearest(self.encode(x))))

    def discriminator_loss(self, batch):
        """Hinge loss on real images and reconstructions (the Trainer runs it from step
        ``disc_start`` on: before that D and its optimiser are untouched)."""
        x = batch["x"]
        d_real = self.D(x * 2 - 1).float()
        d_fake = self.D(self.reconstruct(x) * 2 - 1).float()
        loss_real, loss_fake = hinge_losses(d_real, d_fake)
        return {"loss": loss_real + loss_fake, "d_real": d_real.mean().detach(),
                "d_fake": d_fake.mean().detach()}

    def objectives(self):
        cfg = self.config
        D = {id(p) for p in self.D.parameters()}
        mine = [p for p in self.parameters() if id(p) not in D]       # components are frozen
        betas = (cfg.beta1, cfg.beta2)
        return [Objective("autoencoder", self.autoencoder_loss, mine, lr=cfg.lr, betas=betas),
                Objective("discriminator", self.discriminator_loss, list(self.D.parameters()),
                          lr=cfg.disc_lr or cfg.lr, betas=betas, start=cfg.disc_start)]

    @torch.no_grad()
    def evaluate(self, batch):
        out = super().evaluate(batch)
        x = batch["x"]
        out["d_real"] = self.D(x * 2 - 1).float().mean()
        out["d_fake"] = self.D(self.reconstruct(x) * 2 - 1).float().mean()
        return out
