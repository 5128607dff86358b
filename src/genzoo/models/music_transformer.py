"""Music transformer: the book's recipe (Foster, "Generative Deep Learning", 2nd ed., ch. 11).

A piece is a sequence of (note, duration) pairs (``data.music=tokens``, see data/music). Each
stream is embedded into half the width and given sine positions (Vaswani et al. 2017), and the
halves are concatenated,

    h_0[t] = [ E_note[x_t] + P_t ; E_dur[d_t] + P_t ],

then causal transformer blocks (the book's: post-norm, one block) give h_t, from which two
softmax heads read p(x_t+1 | x_<=t, d_<=t) and p(d_t+1 | x_<=t, d_<=t). The loss is the sum
of the two cross-entropies; sampling draws a note and a duration at each step, each head at
its own temperature, until a new START (the end of the piece). Over one stream (``events``,
Oore et al. 2018, or the S A T B ``grid``) the same network is a plain decoder over it.
``attention=relative`` gives each head learned embeddings of the distance between positions
(Huang et al. 2018, with their memory-efficient skewing; nn/relative_attention.py), which the
Music Transformer found to matter for long performances of events.
The blocks and the token sampler are GPT's (nn/transformer.py, nn/sampling.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.errors import GenzooError
from genzoo.models.base import Family, Objective, SampleOption
from genzoo.nn.embeddings import sinusoidal_embedding
from genzoo.nn.relative_attention import RelativeSelfAttention
from genzoo.nn.sampling import check_sampling, sample_next
from genzoo.nn.transformer import Block
from genzoo.registry import register

PAD = 0


@dataclass
class MusicTransformerConfig:
    n_layer: int = 1                # transformer blocks (the book: one)
    n_head: int = 4                 # heads, splitting the width (the book: 5 heads of 256 each)
    n_embd: int = 256               # width: each stream's embedding gets n_embd / streams
    mlp_ratio: float = 1.0          # feed-forward width / n_embd (the book: 256 -> 1)
    context: int = 50               # positions seen at once (the book's SEQ_LEN)
    dropout: float = 0.3            # the book's DROPOUT_RATE
    norm: str = "post"              # post (the book's blocks) | pre (GPT-2)
    attention: str = "absolute"     # absolute (sine positions only) | relative (Huang et al.)
    music: str = "tokens"           # the recipe's data.music: tokens | events | grid
    lr: float = 1e-3                # Adam

    def validate(self):
        if min(self.n_layer, self.n_head, self.n_embd, self.context) < 1:
            raise ValueError("n_layer, n_head, n_embd and context must be >= 1")
        if self.n_embd % self.n_head or self.n_embd % 4:
            raise ValueError(f"n_embd {self.n_embd} must be divisible by n_head and by 4 (two "
                             "streams of even width, for the sine positions)")
        if self.norm not in ("pre", "post"):
            raise ValueError(f"norm must be pre or post, got {self.norm!r}")
        if self.attention not in ("absolute", "relative"):
            raise ValueError(f"attention must be absolute or relative, got {self.attention!r}")
        if self.music not in ("tokens", "events", "grid"):
            raise ValueError(f"music must be tokens, events or grid, got {self.music!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


PRESETS = {
    "tiny": dict(n_layer=1, n_head=2, n_embd=32, context=16, dropout=0.0),
    # the JSB chorales as S A T B per 16th: 32 steps of 4 voices, a small GPT-like stack
    "grid": dict(music="grid", n_layer=4, n_head=4, n_embd=128, mlp_ratio=4.0, context=128,
                 dropout=0.1, norm="pre"),
    # Oore et al.'s performance events over a longer window, with relative attention
    "events": dict(music="events", n_layer=4, n_head=4, n_embd=128, mlp_ratio=4.0,
                   context=256, dropout=0.1, norm="pre", attention="relative"),
}


@register("music_transformer", config=MusicTransformerConfig, taxonomy="explicit-tractable",
          modality="music", summary="transformer over note and duration tokens (or events), "
          "a softmax head per stream")
class MusicTransformer(Family):
    presets = PRESETS
    train_defaults = {"batch_size": 64, "steps": 5000, "grad_clip": 1.0, "eval_every": 250,
                      "eval_batches": 8, "sample_every": 1000, "sample_n": 4,
                      "checkpoint_every": 1000}
    sample_options = (
        SampleOption("max_tokens", int, 200, "steps (pairs, events or voices) to draw"),
        SampleOption("temperature", float, 1.0, "the note head's temperature (0 = greedy)"),
        SampleOption("duration_temperature", float, None,
                     "the duration head's temperature (default: --temperature)"),
        SampleOption("top_k", int, None, "keep the k likeliest tokens of each head"),
        SampleOption("top_p", float, None, "keep the smallest set of probability >= p"))

    def __init__(self, config: MusicTransformerConfig, data, components=None):
        super().__init__(config, data, components)
        c = config
        rep = data.meta.get("representation")
        if data.modality != "music" or rep not in ("tokens", "events", "grid"):
            raise GenzooError("music_transformer models music as tokens, events or the voice "
                              f"grid (data.music), not {data.modality} {rep or ''}".rstrip())
        if data.shape[0] - 1 > c.context:
            raise GenzooError(f"music_transformer: the data windows hold {data.shape[0] - 1} "
                              f"tokens, more than the context {c.context} (set context="
                              f"{data.shape[0] - 1} or data.context={c.context})")
        m = data.meta
        if rep == "tokens":    # (field, vocabulary): the note stream is x, durations beside it
            self.streams = [("x", m["note_vocab"]), ("duration", m["duration_vocab"])]
            self.start = [m["note_vocab"].index("START"), m["duration_vocab"].index("0")]
        else:
            self.streams = [("x", m["vocab"])]
            self.start = [m["vocab"].index("START")]
        width = c.n_embd // len(self.streams)
        self.wte = nn.ModuleList(nn.Embedding(len(v), width) for _, v in self.streams)
        self.drop = nn.Dropout(c.dropout)
        relative = lambda: (RelativeSelfAttention(c.n_embd, c.n_head, c.context, c.dropout)  # noqa: E731
                            if c.attention == "relative" else None)
        self.blocks = nn.ModuleList(Block(c.n_embd, c.n_head, c.mlp_ratio, c.dropout, c.norm,
                                          attention=relative()) for _ in range(c.n_layer))
        self.ln_f = nn.LayerNorm(c.n_embd) if c.norm == "pre" else nn.Identity()
        self.heads = nn.ModuleList(nn.Linear(c.n_embd, len(v)) for _, v in self.streams)
        for e in self.wte:
            nn.init.normal_(e.weight, 0.0, 0.02)

    @classmethod
    def data_defaults(cls, config):
        return {"music": config.music, "context": config.context}

    # -- the network -----------------------------------------------------------------------
    def embed_streams(self, inputs: list[Tensor]) -> list[Tensor]:
        """Per stream, E[x_t] + P_t: (B, T, n_embd / streams) each."""
        T = inputs[0].shape[1]
        pos = torch.arange(T, device=inputs[0].device)
        return [e(x) + sinusoidal_embedding(pos, e.embedding_dim).to(e.weight.dtype)
                for e, x in zip(self.wte, inputs)]

    def transform(self, h: Tensor) -> list[Tensor]:
        """h_0 (B, T, n_embd) -> per stream the next-token logits (B, T, V_stream)."""
        h = self.drop(h)
        for block in self.blocks:
            h = block(h)
        h = self.ln_f(h)
        return [head(h) for head in self.heads]

    def logits(self, inputs: list[Tensor]) -> list[Tensor]:
        return self.transform(torch.cat(self.embed_streams(inputs), -1))

    # -- training --------------------------------------------------------------------------
    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The sum over streams of the mean cross-entropy (nats) of each real next token."""
        seqs = [batch[name] for name, _ in self.streams]
        logits = self.logits([s[:, :-1] for s in seqs])
        real = batch["mask"][:, 1:] if "mask" in batch else seqs[0][:, 1:] != PAD
        real = real.flatten().float()
        out, total = {}, 0.0
        for (name, _), z, s in zip(self.streams, logits, seqs):
            nll = F.cross_entropy(z.flatten(0, 1).float(), s[:, 1:].flatten(), reduction="none")
            out["nll_" + ("note" if name == "x" else name)] = nll_k = (
                (nll * real).sum() / real.sum().clamp_min(1))
            total = total + nll_k
        out["loss"] = total
        return out

    def objectives(self):
        return [Objective("nll", self.loss, list(self.parameters()), lr=self.config.lr)]

    # -- sampling --------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, max_tokens: int = 200,
               temperature: float = 1.0, duration_temperature: float | None = None,
               top_k: int | None = None, top_p: float | None = None):
        """``n`` pieces from START: ids (n, 1 + steps), and for token pairs a dict with the
        note ids ``x`` and the ``duration`` ids. A row that draws START again (a new piece)
        has ended: PAD follows."""
        check_sampling(temperature, top_k, top_p, max_tokens)
        tau = [temperature, temperature if duration_temperature is None else duration_temperature]
        if tau[1] < 0:
            raise GenzooError(f"duration_temperature {tau[1]}: must be >= 0 (0 = greedy)")
        was_training = self.training
        self.eval()
        seqs = [torch.full((n, 1), s, dtype=torch.long, device=self.device) for s in self.start]
        done = torch.zeros(n, dtype=torch.bool, device=self.device)
        for _ in range(max_tokens):
            logits = self.logits([s[:, -self.config.context:] for s in seqs])
            nxt = [sample_next(z[:, -1], generator, tau[k], top_k, top_p)
                   for k, z in enumerate(logits)]
            done |= nxt[0] == self.start[0]
            seqs = [torch.cat([s, t.masked_fill(done, PAD)[:, None]], 1) for s, t in zip(seqs, nxt)]
            if bool(done.all()):
                break
        self.train(was_training)
        return {"x": seqs[0], "duration": seqs[1]} if len(seqs) == 2 else seqs[0]
