"""The parts VQ-GAN (Esser, Rombach & Ommer 2021, "Taming Transformers for High-Resolution
Image Synthesis") adds to a VQ-VAE: a patch discriminator, a perceptual distance, and the
adaptive weight that balances the adversarial loss against the reconstruction.

- PatchGAN (Isola et al. 2017): a fully convolutional discriminator whose output is a map of
  logits, one per overlapping patch of the input (70x70 pixels with 3 layers), so it judges
  local texture and leaves global structure to the reconstruction loss.
- Perceptual distance (after LPIPS, Zhang et al. 2018, with uniform layer weights): the
  feature maps f_l of a fixed network, each unit-normalised along the channels, compared as
  sum_l mean_hw ||f_l(x) - f_l(x_hat)||^2. No downloaded VGG: the network is a run genzoo
  trained (a classifier) or one the user names; its activations are tapped with hooks.
- The adaptive weight lambda = ||grad_{G_L} L_rec|| / (||grad_{G_L} L_GAN|| + delta), with
  G_L the decoder's last layer and delta = 1e-4: the adversarial gradient is scaled to the
  size of the reconstruction's where the two meet, whatever their units.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class PatchDiscriminator(nn.Module):
    """images (N, C, H, W) in [-1, 1] -> logits (N, 1, h, w), one per patch.

    4x4 convolutions: one of ``width`` channels with stride 2, then ``layers - 1`` more with
    stride 2 doubling the width (up to 8x), one with stride 1, each with batch norm and
    LeakyReLU 0.2, and a last stride-1 convolution to one channel."""

    def __init__(self, channels: int, width: int = 64, layers: int = 3):
        super().__init__()
        seq: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        c = width
        for i in range(1, layers + 1):
            c_out = width * min(2 ** i, 8)
            stride = 2 if i < layers else 1
            seq += [nn.Conv2d(c, c_out, 4, stride, 1, bias=False), nn.BatchNorm2d(c_out),
                    nn.LeakyReLU(0.2)]
            c = c_out
        seq.append(nn.Conv2d(c, 1, 4, 1, 1))
        self.net = nn.Sequential(*seq)
        for m in self.modules():            # the pix2pix initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def adaptive_weight(l_rec: Tensor, l_gan: Tensor, last_weight: Tensor, delta: float = 1e-4,
                    max_weight: float = 1e4) -> Tensor:
    """lambda = |grad_W L_rec| / (|grad_W L_GAN| + delta) at the decoder's last weight W,
    clamped to [0, max_weight] and detached (it scales the loss, it is not trained)."""
    (g_rec,) = torch.autograd.grad(l_rec, last_weight, retain_graph=True)
    (g_gan,) = torch.autograd.grad(l_gan, last_weight, retain_graph=True)
    lam = g_rec.float().norm() / (g_gan.float().norm() + delta)
    return lam.clamp(0, max_weight).detach()


ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.SiLU, nn.GELU)


class FeatureTaps:
    """The feature maps (4-d outputs of the nonlinearities) of ``network`` while it runs
    ``forward`` (e.g. a classifier's ``features``)."""

    def __init__(self, network: nn.Module, forward):
        self.forward = forward
        self.maps: list[Tensor] = []
        self.layers = [m for m in network.modules() if isinstance(m, ACTIVATIONS)]
        for m in self.layers:
            m.register_forward_hook(self._keep)
        self.recording = False

    def _keep(self, module, inputs, output):
        if self.recording and output.dim() == 4:
            self.maps.append(output)

    def __call__(self, x: Tensor) -> list[Tensor]:
        self.maps, self.recording = [], True
        try:
            self.forward(x)
        finally:
            self.recording = False
        maps, self.maps = self.maps, []
        return maps


def perceptual_distance(taps: FeatureTaps, x: Tensor, x_hat: Tensor) -> Tensor:
    """sum over tapped layers of mean over positions of |n(f(x)) - n(f(x_hat))|^2, n
    normalising each position's feature vector (the LPIPS form with uniform weights); one
    number per item (N,)."""
    total = 0
    for a, b in zip(taps(x), taps(x_hat)):
        a, b = F.normalize(a.float(), dim=1, eps=1e-10), F.normalize(b.float(), dim=1, eps=1e-10)
        total = total + (a - b).square().sum(1).mean((1, 2))
    return total if isinstance(total, Tensor) else x.new_zeros(len(x))
