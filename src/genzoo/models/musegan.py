"""MuseGAN (Dong et al. 2018), as in Foster's "Generative Deep Learning", 2nd ed., ch. 11.

A multi-track piano roll (bars x 16 steps x pitches x tracks) is drawn from four kinds of
noise, each N(0, I) of size z: *chords* (one for the piece, shared by the tracks), *style*
(one for the piece, the same in every bar and track), *melody* (one per track) and *groove*
(one per track, the same in every bar). Chords and each track's melody pass through a
temporal network (transposed convolutions along time) that turns one vector into one per bar,
so they change from bar to bar; style and groove do not. For bar b and track k, the bar
generator of track k maps [chords_b ; style ; melody_k,b ; groove_k] to that track's 16 x
pitches roll (a dense layer, then transposed convolutions that unfold time 2 -> 16 and then
pitch, ending in tanh). A critic of 3-d convolutions (bars, steps, pitches; tracks as channels)
scores whole phrases, trained as a Wasserstein critic with a gradient penalty (Gulrajani et
al. 2017), n_critic steps per generator step.

Samples become notes as the data was made: a real roll is +1 where a pitch sounds and -1
elsewhere, and each chorale voice sounds at most one pitch at a time, so per track and step
the likeliest pitch sounds when its output is above the midpoint 0 and the voice rests
otherwise (``argmax``; the book's argmax never rests, so it turns a voice's uncertain steps into
notes), or every cell above 0 sounds (``threshold``: Dong et al.'s hard thresholding, for
polyphonic tracks). A pitch held over consecutive steps is one held note (data/music/grid.py
reads rolls that way, as does the qualified-notes measure).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.errors import GenzooError
from genzoo.models.base import Family, Objective, SampleOption
from genzoo.nn.gan import gradient_penalty, spread
from genzoo.registry import register

STEPS = 16                      # steps per bar: the 16th-note grid of data/music
PITCH_BLOCK = 12                # the last upsampling unfolds one octave at a time


@dataclass
class MuseGANConfig:
    z_dim: int = 32             # size of each noise: chords, style, melody and groove per track
    t_width: int = 64           # temporal networks' hidden channels (the book: 1024)
    g_width: int = 64           # bar generators: dense 2 g, then g, g/2, g/2, g/2 (the book: 512)
    c_width: int = 32           # critic: c six times, then 2c, 4c, dense 8c (the book: 128)
    n_critic: int = 5           # critic updates per generator update
    lambda_gp: float = 10.0     # weight of the gradient penalty
    lr: float = 1e-3            # Adam, both players (the book's)
    beta1: float = 0.5
    beta2: float = 0.9
    slope: float = 0.3          # LeakyReLU of the critic (Keras' default, the book's)
    bars: int = 2               # the recipe's data.bars
    pitch_range: str = "auto"   # the recipe's data.pitch_range (the book: 0-83, 84 pitches)
    binarize: str = "argmax"    # samples -> notes: argmax (at most a pitch per track and step) | threshold

    def validate(self):
        if min(self.z_dim, self.t_width, self.c_width, self.n_critic) < 1 or self.g_width < 2:
            raise ValueError("z_dim, t_width, c_width, n_critic must be >= 1 and g_width >= 2")
        if self.bars < 2:
            raise ValueError(f"bars must be >= 2 (the temporal networks unfold bars), got {self.bars}")
        if self.binarize not in ("argmax", "threshold"):
            raise ValueError(f"binarize must be argmax or threshold, got {self.binarize!r}")
        if self.lr <= 0 or self.lambda_gp < 0:
            raise ValueError("lr must be > 0 and lambda_gp >= 0")


PRESETS = {
    "tiny": dict(z_dim=8, t_width=16, g_width=16, c_width=8, n_critic=2),
    # the book's networks at full size over its 84 pitches (about 20 CPU-seconds a step)
    "book": dict(t_width=1024, g_width=512, c_width=128, pitch_range="0-83"),
}


def _init(m: nn.Module) -> None:
    """N(0, 0.02) weights, zero biases: the book's initializer."""
    if isinstance(m, (nn.Linear, nn.Conv3d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def _up(c_in: int, c_out: int, k: tuple[int, int], bn: bool = True) -> list[nn.Module]:
    """A transposed convolution with stride = kernel (each input cell unfolds into k cells)."""
    return [nn.ConvTranspose2d(c_in, c_out, k, k)] + ([nn.BatchNorm2d(c_out), nn.ReLU()] if bn else [])


class TemporalNetwork(nn.Module):
    """z (B, z) -> one vector per bar (B, bars, z): along time 1 -> 2 -> bars."""

    def __init__(self, z: int, width: int, bars: int):
        super().__init__()
        self.net = nn.Sequential(nn.ConvTranspose2d(z, width, (2, 1)), nn.BatchNorm2d(width),
                                 nn.ReLU(), nn.ConvTranspose2d(width, z, (bars - 1, 1)),
                                 nn.BatchNorm2d(z), nn.ReLU())

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z[:, :, None, None])[..., 0].transpose(1, 2)


class BarGenerator(nn.Module):
    """[chords ; style ; melody ; groove] (B, 4z) -> one track's bar (B, 16, pitches) in [-1, 1]."""

    def __init__(self, z: int, g: int, pitches: int):
        super().__init__()
        self.g, self.pitches = g, pitches
        octaves = -(-pitches // PITCH_BLOCK)
        self.dense = nn.Sequential(nn.Linear(4 * z, 2 * g), nn.BatchNorm1d(2 * g), nn.ReLU())
        self.net = nn.Sequential(*_up(g, g, (2, 1)), *_up(g, g // 2, (2, 1)),          # 4, 8 steps
                                 *_up(g // 2, g // 2, (2, 1)),                          # 16 steps
                                 *_up(g // 2, g // 2, (1, octaves)),                    # octaves
                                 *_up(g // 2, 1, (1, PITCH_BLOCK), bn=False), nn.Tanh())

    def forward(self, u: Tensor) -> Tensor:
        h = self.dense(u).view(len(u), self.g, 2, 1)
        return self.net(h)[:, 0, :, :self.pitches]


class Generator(nn.Module):
    def __init__(self, c: MuseGANConfig, pitches: int, tracks: int):
        super().__init__()
        self.chords = TemporalNetwork(c.z_dim, c.t_width, c.bars)
        self.melody = nn.ModuleList(TemporalNetwork(c.z_dim, c.t_width, c.bars) for _ in range(tracks))
        self.bar = nn.ModuleList(BarGenerator(c.z_dim, c.g_width, pitches) for _ in range(tracks))

    def forward(self, chords: Tensor, style: Tensor, melody: Tensor, groove: Tensor) -> Tensor:
        """Noise (B, z), (B, z), (B, tracks, z), (B, tracks, z) -> (B, bars, 16, pitches, tracks)."""
        c_t = self.chords(chords)                                     # (B, bars, z)
        B, bars, z = c_t.shape
        out = []
        for k, (temporal, bar) in enumerate(zip(self.melody, self.bar)):
            m_t = temporal(melody[:, k])                              # (B, bars, z)
            u = torch.cat([c_t, style[:, None].expand(-1, bars, -1), m_t,
                           groove[:, k, None].expand(-1, bars, -1)], -1)
            out.append(bar(u.reshape(B * bars, 4 * z)).view(B, bars, STEPS, -1))
        return torch.stack(out, -1)


class Critic(nn.Module):
    """Phrases (B, bars, 16, pitches, tracks) in [-1, 1] -> one score each (B,)."""

    def __init__(self, c: MuseGANConfig, pitches: int, tracks: int):
        super().__init__()
        w, a = c.c_width, -(-pitches // PITCH_BLOCK)
        self.pad = a * PITCH_BLOCK - pitches
        convs = [(tracks, w, (2, 1, 1), (1, 1, 1), 0), (w, w, (c.bars - 1, 1, 1), (1, 1, 1), 0),
                 (w, w, (1, 1, PITCH_BLOCK), (1, 1, PITCH_BLOCK), 0), (w, w, (1, 1, a), (1, 1, a), 0),
                 (w, w, (1, 2, 1), (1, 2, 1), 0), (w, w, (1, 2, 1), (1, 2, 1), 0),   # 16 -> 8 -> 4
                 (w, 2 * w, (1, 4, 1), (1, 2, 1), (0, 1, 0)),                       # 4 -> 2
                 (2 * w, 4 * w, (1, 3, 1), (1, 2, 1), (0, 1, 0))]                   # 2 -> 1
        layers: list[nn.Module] = []
        for c_in, c_out, k, s, p in convs:
            layers += [nn.Conv3d(c_in, c_out, k, s, p), nn.LeakyReLU(c.slope)]
        self.convs = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * w, 8 * w), nn.LeakyReLU(c.slope),
                                  nn.Linear(8 * w, 1))

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 4, 1, 2, 3)                  # tracks as channels: (B, K, bars, 16, P)
        x = F.pad(x, (0, self.pad), value=-1.0)       # silent pitches up to whole octaves
        return self.head(self.convs(x)).flatten()


@register("musegan", config=MuseGANConfig, taxonomy="implicit", modality="music",
          summary="multi-track piano rolls from chords/style/melody/groove noise; WGAN-GP with "
          "a 3-d convolutional critic")
class MuseGAN(Family):
    presets = PRESETS
    ema_networks = ("G",)
    train_defaults = {"batch_size": 32, "steps": 3000, "sample_every": 500, "sample_n": 4,
                      "log_every": 10}
    sample_options = (SampleOption("binarize", str, None, "how samples become notes",
                                   choices=("argmax", "threshold")),)

    def __init__(self, config: MuseGANConfig, data, components=None):
        super().__init__(config, data, components)
        if (data.modality != "music" or data.meta.get("representation") != "pianoroll"
                or len(data.shape) != 4 or data.shape[1] != STEPS):
            raise GenzooError(f"musegan models piano rolls (data.music=pianoroll), not "
                              f"{data.modality} items of shape {tuple(data.shape)}")
        bars, _, pitches, tracks = data.shape
        if bars != config.bars:
            raise GenzooError(f"musegan: the data has {bars} bars per item, the model "
                              f"{config.bars} (set bars={bars} or data.bars={config.bars})")
        self.tracks = tracks
        self.G = Generator(config, pitches, tracks)
        self.D = Critic(config, pitches, tracks)
        self.apply(_init)

    @classmethod
    def data_defaults(cls, config) -> dict:
        return {"music": "pianoroll", "bars": config.bars, "pitch_range": config.pitch_range}

    # -- the players -----------------------------------------------------------------------
    def prior(self, n: int, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Chords, style (n, z), melody, groove (n, tracks, z), all N(0, I)."""
        z, K = self.config.z_dim, self.tracks
        draw = lambda *shape: torch.randn(*shape, generator=generator, device=self.device)  # noqa: E731
        return {"chords": draw(n, z), "style": draw(n, z), "melody": draw(n, K, z),
                "groove": draw(n, K, z)}

    def fakes(self, n: int) -> Tensor:
        return self.G(**self.prior(n))

    def critic(self, x: Tensor, eager: bool = False) -> Tensor:
        return (self.D.forward if eager else self.D)(x)

    @staticmethod
    def real(batch: dict) -> Tensor:
        """Rolls in {0, 1} -> the generator's tanh range {-1, 1} (the book's data)."""
        return batch["x"] * 2 - 1

    # -- the game (WGAN-GP) ----------------------------------------------------------------
    def critic_loss(self, batch: dict) -> dict[str, Tensor]:
        x = self.real(batch)
        x_tilde = self.fakes(len(x)).detach()
        d_real, d_fake = self.critic(x).float().mean(), self.critic(x_tilde).float().mean()
        gp = gradient_penalty(lambda x_hat: self.critic(x_hat, eager=True), x, x_tilde)
        return {"loss": d_fake - d_real + self.config.lambda_gp * gp,
                "wasserstein": d_real - d_fake, "gradient_penalty": gp,
                "spread_ratio": spread(x_tilde) / spread(x).clamp_min(1e-8)}

    def generator_loss(self, batch: dict) -> dict[str, Tensor]:
        d_fake = self.critic(self.fakes(len(batch["x"]))).float().mean()
        return {"loss": -d_fake, "d_fake": d_fake.detach()}

    def objectives(self) -> list[Objective]:
        c = self.config
        betas = (c.beta1, c.beta2)
        return [Objective("critic", self.critic_loss, list(self.D.parameters()), lr=c.lr,
                          betas=betas, repeats=c.n_critic),
                Objective("generator", self.generator_loss, list(self.G.parameters()),
                          lr=c.lr, betas=betas)]

    @torch.no_grad()
    def evaluate(self, batch: dict) -> dict[str, Tensor]:
        x = self.real(batch)
        d_real = self.critic(x).float().mean()
        d_fake = self.critic(self.fakes(len(x))).float().mean()
        return {"d_real": d_real, "d_fake": d_fake, "d_gap": d_real - d_fake}

    # -- sampling --------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               binarize: str | None = None) -> Tensor:
        """``n`` piano rolls (n, bars, 16, pitches, tracks) of notes in {0, 1}: per track and
        step the likeliest pitch if it is above 0, else a rest (``argmax``), or every pitch
        above 0 (``threshold``); 0 is the midpoint of the data's -1 (off) and +1 (on)."""
        mode = binarize or self.config.binarize
        if mode not in ("argmax", "threshold"):
            raise GenzooError(f"binarize {mode!r}: must be argmax or threshold")
        y = self.G(**self.prior(n, generator))
        if mode == "threshold":
            return (y > 0).float()
        top, sounds = y.argmax(3), y.amax(3) > 0                      # (n, bars, 16, tracks)
        return F.one_hot(top, y.shape[3]).transpose(3, 4).float() * sounds[..., None, :]
