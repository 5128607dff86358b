"""LSTM language model (Hochreiter & Schmidhuber 1997; the text recipe of Foster's
"Generative Deep Learning", ch. 5, after Graves 2013).

Each token is embedded, e_t = E[x_t]; a long short-term memory carries a cell state c_t that
input, forget and output gates write, keep and read (c_t = f_t * c_t-1 + i_t * g_t,
h_t = o_t * tanh(c_t)), so it can carry information over many steps; a dense layer with a
softmax over the vocabulary reads p(x_t+1 | x_<=t) from h_t. The recurrent state (h, c) is the
model's memory when sampling: each new token costs one step.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from genzoo.models.base import Objective
from genzoo.models.next_token import NextTokenModel
from genzoo.registry import register


@dataclass
class LSTMConfig:
    embedding_dim: int = 100        # size of E[x]
    hidden_dim: int = 128           # LSTM units (h and c)
    num_layers: int = 1             # stacked LSTM layers
    dropout: float = 0.0            # between stacked layers and before the output layer
    tokenizer: str = "word"         # the recipe's data.tokenizer (Foster: words, 10,000 of them)
    context: int = 200              # tokens per training window (Foster pads recipes to 200)
    lr: float = 1e-3                # Adam
    betas: tuple[float, float] = (0.9, 0.999)

    def validate(self):
        if min(self.embedding_dim, self.hidden_dim, self.num_layers, self.context) < 1:
            raise ValueError("embedding_dim, hidden_dim, num_layers and context must be >= 1")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


PRESETS = {
    # Karpathy's char-rnn setting: 2 layers of 256 over characters.
    "char-rnn": dict(embedding_dim=64, hidden_dim=256, num_layers=2, dropout=0.1,
                     tokenizer="char", context=100, lr=2e-3),
    # A few-millisecond model for the contract test and pipeline smoke runs.
    "tiny": dict(embedding_dim=8, hidden_dim=16, tokenizer="char", context=16),
}


@register("lstm", config=LSTMConfig, taxonomy="explicit-tractable", modality="text",
          summary="LSTM language model: embedding, recurrent memory, softmax over the vocabulary",
          showcase="genzoo.viz.text:showcase")
class LSTM(NextTokenModel):
    presets = PRESETS
    train_defaults = {"batch_size": 32, "steps": 5000, "grad_clip": 5.0, "eval_every": 250,
                      "eval_batches": 8, "sample_every": 1000, "sample_n": 4,
                      "checkpoint_every": 1000}

    def __init__(self, config: LSTMConfig, data):
        super().__init__(config, data)
        c = config
        self.embedding = nn.Embedding(self.V, c.embedding_dim)     # E
        self.lstm = nn.LSTM(c.embedding_dim, c.hidden_dim, c.num_layers, batch_first=True,
                            dropout=c.dropout if c.num_layers > 1 else 0.0)
        self.drop = nn.Dropout(c.dropout)
        self.out = nn.Linear(c.hidden_dim, self.V)

    @classmethod
    def data_defaults(cls, config):
        return {"tokenizer": config.tokenizer, "context": config.context}

    def embed(self, idx):
        return self.embedding(idx)

    def transform(self, e, state=None):
        """Embedded inputs (B, T, E) -> logits (B, T, V) and the recurrent state (h, c)."""
        h, state = self.lstm(e, state)
        return self.out(self.drop(h)), state

    def logits(self, idx):
        return self.transform(self.embed(idx))[0]

    def objectives(self):
        c = self.config
        return [Objective("nll", self.loss, list(self.parameters()), lr=c.lr, betas=tuple(c.betas))]

    def step(self, new, state):
        """Logits after ``new`` tokens, continuing from the recurrent state."""
        logits, state = self.transform(self.embed(new), state)
        return logits[:, -1], state
