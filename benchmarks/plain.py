"""The plain PyTorch references genzoo's training steps are measured against (side_by_side.py).

- :class:`PlainGPT`: a GPT written the way nanoGPT writes it (Karpathy's model.py): one module
  per block, fused q/k/v projection, scaled-dot-product attention with ``is_causal``, GELU MLP,
  pre-norm, tied embedding and output weights; trained by the obvious loop (AdamW with weight
  decay on matrices only, gradient clipping at 1.0).
- :func:`plain_diffusion_step`, :func:`plain_vae_step`: the obvious eager loop around a copy of
  genzoo's own network (the U-Net; the VAE's encoder, head and decoder), so that what differs
  from genzoo's step is the loop (Trainer, objective, EMA, scheduler), not the network.

Written for the benchmark from the papers' equations; nothing here is used by genzoo.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CausalSelfAttention(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        self.heads = heads

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class MLP(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.c_fc, self.gelu, self.c_proj = nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d)

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.ln_1, self.attn = nn.LayerNorm(d), CausalSelfAttention(d, heads)
        self.ln_2, self.mlp = nn.LayerNorm(d), MLP(d)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class PlainGPT(nn.Module):
    def __init__(self, vocab: int, block: int, n_layer: int, n_head: int, d: int):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(block, d)
        self.h = nn.ModuleList(Block(d, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.wte.weight
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if getattr(m, "bias", None) is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, idx, targets):
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.reshape(-1))

    def optimizer(self, lr: float = 1e-3, weight_decay: float = 0.1, betas=(0.9, 0.99)):
        decay = [p for p in self.parameters() if p.dim() >= 2]
        rest = [p for p in self.parameters() if p.dim() < 2]
        return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                  {"params": rest, "weight_decay": 0.0}], lr=lr, betas=betas)


def _autocast(device: torch.device, bf16: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def plain_gpt_step(model: PlainGPT, opt, x: torch.Tensor, bf16: bool = False) -> float:
    """One step on windows ``x`` (B, T + 1), nanoGPT's way."""
    with _autocast(x.device, bf16):
        loss = model(x[:, :-1], x[:, 1:])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss.detach()


def plain_diffusion_step(net: nn.Module, opt, x: torch.Tensor, bf16: bool = False, T: int = 1000):
    """DDPM's simple loss (Ho et al. 2020, algorithm 1) on images ``x`` in [0, 1]: t ~ U{1..T},
    x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps with linear betas 1e-4 .. 0.02, MSE on eps."""
    x0 = x * 2 - 1
    betas = torch.linspace(1e-4, 0.02, T, device=x.device)
    abar = torch.cumprod(1 - betas, 0)
    i = torch.randint(0, T, (len(x0),), device=x.device)
    eps = torch.randn_like(x0)
    a = abar[i].view(-1, 1, 1, 1)
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
    with _autocast(x.device, bf16):
        out = net(x_t, (i + 1).float() / T, None)
    loss = F.mse_loss(out.float(), eps)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()
    return loss.detach()


def plain_vae_step(parts: nn.ModuleDict, opt, x: torch.Tensor, beta: float, bf16: bool = False):
    """The ELBO's negative, beta-weighted (Kingma & Welling 2014): encoder -> (mu, log var),
    z = mu + sigma eps, Bernoulli cross-entropy of the decoder's logits, KL to N(0, I)."""
    with _autocast(x.device, bf16):
        mu, log_var = parts["head"](parts["encoder"](x)).float().chunk(2, dim=-1)
        z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
        logits = parts["decoder"](z).float()
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).mean(1).mean()
    kl = (-0.5 * (1 + log_var - mu.pow(2) - log_var.exp()).sum(-1)).mean()
    loss = beta * recon + kl
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach()


def gpt_flops_per_token(n_params: int, n_layer: int, block: int, d: int) -> float:
    """Training FLOPs per token: 6 N + 12 L T d (Kaplan et al. 2020, with attention)."""
    return 6 * n_params + 12 * n_layer * block * d


__all__ = ["PlainGPT", "plain_gpt_step", "plain_diffusion_step", "plain_vae_step",
           "gpt_flops_per_token"]
