"""Image classifiers of the deep-learning basics chapter (Foster, "Generative Deep Learning",
ch. 2): a multilayer perceptron and a small convolutional network.

Not generative: they learn p(y|x) by minimising the cross-entropy between the softmax of their
logits and the true labels. They are here because a trained classifier's penultimate layer is
a feature space in which generated images can be compared with real ones (Fréchet distance,
KID, precision/recall): `genzoo eval RUN --features classifier:CLASSIFIER_RUN`.

MLP: flatten -> 200 -> 150 -> classes (ReLU). CNN: four 3x3 convolutions of 32, 32, 64, 64
channels (strides 1, 2, 1, 2), each with batch norm and LeakyReLU, then a dense layer of 128
(batch norm, LeakyReLU, dropout 0.5) and the class logits.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo, Family, Objective
from genzoo.registry import register


@dataclass
class ClassifierConfig:
    arch: str = "cnn"                         # cnn | mlp
    mlp_widths: tuple[int, ...] = (200, 150)  # hidden units of the MLP
    conv_widths: tuple[int, ...] = (32, 32, 64, 64)   # CNN channels; strides alternate 1, 2
    dense: int = 128                          # CNN penultimate layer (the feature space)
    dropout: float = 0.5                      # before the CNN's logits
    negative_slope: float = 0.2               # LeakyReLU slope (Keras' default 0.3; book uses 0.2)
    lr: float = 5e-4                          # Adam, betas (0.9, 0.999)

    def validate(self):
        if self.arch not in ("cnn", "mlp"):
            raise ValueError(f"arch must be cnn or mlp, got {self.arch!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


def mlp(in_features: int, widths, classes: int) -> tuple[nn.Sequential, nn.Linear]:
    layers, d = [nn.Flatten()], in_features
    for w in widths:
        layers += [nn.Linear(d, w), nn.ReLU()]
        d = w
    return nn.Sequential(*layers), nn.Linear(d, classes)


def cnn(shape, cfg: ClassifierConfig, classes: int) -> tuple[nn.Sequential, nn.Sequential]:
    layers, c = [], shape[0]
    h, w = shape[1], shape[2]
    for i, width in enumerate(cfg.conv_widths):
        stride = 1 + i % 2
        layers += [nn.Conv2d(c, width, 3, stride=stride, padding=1), nn.BatchNorm2d(width),
                   nn.LeakyReLU(cfg.negative_slope)]
        c, h, w = width, (h - 1) // stride + 1, (w - 1) // stride + 1
    layers += [nn.Flatten(), nn.Linear(c * h * w, cfg.dense), nn.BatchNorm1d(cfg.dense),
               nn.LeakyReLU(cfg.negative_slope)]
    return nn.Sequential(*layers), nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(cfg.dense, classes))


@register("classifier", config=ClassifierConfig, taxonomy="discriminative", modality="image",
          summary="MLP or CNN image classifier (ch. 2); its penultimate layer is a metric space",
          showcase="genzoo.viz.classifier:showcase")
class Classifier(Family):
    # 10 epochs of batch 32 in the book; a step budget here (sampling grids make no sense)
    train_defaults = {"batch_size": 32, "steps": 3000, "sample_every": 0, "eval_every": 250,
                      "eval_batches": 20}
    presets = {
        "mlp": {"arch": "mlp"},
        # A few-millisecond CNN for the contract test and pipeline smoke runs.
        "tiny": {"conv_widths": [8, 8], "dense": 16},
    }

    def __init__(self, config: ClassifierConfig, data: DataInfo):
        super().__init__(config, data)
        if data.modality != "image" or len(data.shape) != 3:
            raise GenzooError(f"classifier: needs image data, got {data.modality} {tuple(data.shape)}")
        if data.num_classes < 2:
            raise GenzooError("classifier: the data has no class labels (use a folder with one "
                              "sub-folder per class, or arrays with y)")
        shape, k = tuple(data.shape), data.num_classes
        if config.arch == "mlp":
            self.body, self.head = mlp(shape[0] * shape[1] * shape[2], config.mlp_widths, k)
        else:
            self.body, self.head = cnn(shape, config, k)

    @property
    def feature_dim(self) -> int:
        return self.config.mlp_widths[-1] if self.config.arch == "mlp" else self.config.dense

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer: what the metrics compare."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of p(y|x)."""
        return self.head(self.body(x))

    def loss(self, batch):
        if "y" not in batch:
            raise GenzooError("classifier: the batch has no labels")
        logits = self(batch["x"])
        ce = F.cross_entropy(logits, batch["y"])
        accuracy = (logits.argmax(1) == batch["y"]).float().mean()
        return {"loss": ce, "accuracy": accuracy}

    def objectives(self):
        return [Objective("classifier", self.loss, list(self.parameters()), lr=self.config.lr)]

    @torch.no_grad()
    def evaluate(self, batch):
        return self.loss(batch)         # logged as val/loss and val/accuracy

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self(x).argmax(1)

    def sample(self, n, generator=None):
        raise GenzooError("classifier: a discriminative model does not sample; use it as "
                          "--features classifier:RUN_DIR in `genzoo eval`")


@torch.no_grad()
def accuracy(model: Classifier, data, batch_size: int = 500) -> tuple[float, torch.Tensor]:
    """(accuracy over the whole dataset, confusion matrix counts [true, predicted])."""
    model.eval()
    k = model.data.num_classes
    confusion = torch.zeros(k, k, dtype=torch.long)
    for i in range(0, len(data), batch_size):
        b = data.batch(torch.arange(i, min(len(data), i + batch_size), device=data.x.device))
        pred = model.predict(b["x"].to(model.device)).cpu()
        confusion += torch.bincount(b["y"].cpu() * k + pred, minlength=k * k).view(k, k)
    return float(confusion.diag().sum() / confusion.sum()), confusion

