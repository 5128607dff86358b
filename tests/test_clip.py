"""CLIP: the symmetric contrastive loss, the clipped temperature, the text encoder's pooling,
learning to name classes it was never told apart, and its uses as a feature space and scorer."""
import math

import numpy as np
import pytest
import torch

from conftest import blobs, captioned_images
from genzoo import data as D
from genzoo.data import tokenizers as tk
from genzoo.evaluation import contrastive
from genzoo.evaluation.features import get_extractor
from genzoo.models.base import DataInfo
from genzoo.models.multimodal import text as txt
from genzoo.models.multimodal.clip import CLIP, CLIPConfig, contrastive_loss, recall_at
from genzoo.models.multimodal.encoders import ViTEncoder
from genzoo.training import Trainer, TrainConfig, launch
from genzoo.training.run import load_model

TINY = dict(widths=(8, 16), blocks=1, text_width=16, text_layers=1, text_heads=2, embed_dim=16,
            context=16, image_size=8)


# ------------------------------------------------------------------ the loss
def test_identity_similarity_gives_the_least_loss_and_its_closed_form():
    N, s = 6, torch.tensor(5.0)
    I = torch.eye(N)
    loss = contrastive_loss(I, I.clone(), s)
    # logits: s on the diagonal, 0 elsewhere -> each row's CE is log(1 + (N - 1) e^-s)
    assert loss.item() == pytest.approx(math.log(1 + (N - 1) * math.exp(-5.0)), rel=1e-5)
    for seed in range(5):
        perm = torch.randperm(N, generator=torch.Generator().manual_seed(seed))
        if not torch.equal(perm, torch.arange(N)):
            assert contrastive_loss(I, I[perm], s) > loss + 1
    # and it is symmetric: images and captions swap roles
    A, B = torch.nn.functional.normalize(torch.randn(2, N, 4), dim=-1)
    assert contrastive_loss(A, B, s).item() == pytest.approx(contrastive_loss(B, A, s).item(), rel=1e-6)


def test_recall_at_k_on_a_hand_made_similarity():
    sim = torch.tensor([[0.9, 0.1, 0.0], [0.8, 0.2, 0.1], [0.0, 0.5, 0.4]])
    same = torch.eye(3, dtype=torch.bool)
    assert recall_at(sim, same, 1).item() == pytest.approx(1 / 3)
    assert recall_at(sim, same, 2).item() == pytest.approx(1.0)


# ------------------------------------------------------------------ the model
@pytest.fixture
def captioned(tmp_path):
    ds = D.load(str(captioned_images(tmp_path, n=64)), D.DataOptions(tokenizer="bpe", vocab_size=300,
                                                                      context=16))
    return ds.split(16)


def test_temperature_stays_in_its_clamp(captioned):
    train, _ = captioned
    model = CLIP(CLIPConfig(**TINY), DataInfo.of(train))
    assert model.scale().item() == pytest.approx(1 / 0.07, rel=1e-5)
    with torch.no_grad():
        model.logit_scale.fill_(10.0)                  # exp(10) would scale logits by 22026
    assert model.scale().item() == pytest.approx(100.0)
    # a huge lr on s only: the loss wants s ever larger once the batch is separated
    opt = torch.optim.SGD([model.logit_scale], lr=100.0)
    batch = train.batch(torch.arange(16))
    for _ in range(5):
        opt.zero_grad()
        model.loss(batch)["loss"].backward()
        assert 0 <= model.logit_scale.item() <= math.log(100) + 1e-6
        opt.step()
        with torch.no_grad():
            model.logit_scale.fill_(-5.0 if _ % 2 else 10.0)   # and pushed out of both ends
    out = model.loss(batch)
    assert 1.0 <= out["logit_scale"].item() <= 100.0 + 1e-4


def test_text_pooling_reads_the_closing_end_token_and_ignores_padding():
    enc = txt.TextTransformer(vocab=20, context=12, width=16, layers=2, heads=2).eval()
    tokens = torch.tensor([[tk.END, 5, 6, 7, tk.END, tk.PAD, tk.PAD]])
    longer = torch.cat([tokens, torch.full((1, 3), tk.PAD)], 1)
    states, mask, pooled = enc(tokens)
    states2, _, pooled2 = enc(longer)
    torch.testing.assert_close(pooled, states[:, 4])              # the closing END
    torch.testing.assert_close(pooled2, pooled)                    # padding changes nothing
    torch.testing.assert_close(states2[:, :5], states[:, :5])
    assert mask.tolist() == [[True] * 5 + [False] * 2]
    # causal: the pooled vector depends on every caption token, nothing depends on later ones
    emb, r = enc.token.weight, torch.randn(16)       # (a plain sum of a layer norm is 0)
    grad = torch.autograd.grad((enc(tokens)[2] * r).sum(), emb)[0]
    assert all(grad[t].abs().sum() > 0 for t in (5, 6, 7))
    late = torch.autograd.grad((enc(tokens)[0][:, 2] * r).sum(), emb)[0]
    assert late[7].abs().sum() == 0 and late[6].abs().sum() > 0


def test_vit_tokens_all_see_each_other():
    vit = ViTEncoder(3, 8, 4, width=16, layers=1, heads=2)
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    g = torch.autograd.grad(vit(x).sum(), x)[0]
    assert g[..., 4:, 4:].abs().sum() > 0          # the class token reads the last patch too


@pytest.mark.parametrize("encoder", ["resnet", "vit"])
def test_clip_learns_to_name_classes_zero_shot(tmp_path, encoder):
    x, y = blobs()
    np.savez(tmp_path / "blobs.npz", x=x, y=y, class_names=["top left", "top right", "bottom left",
                                                         "bottom right"])
    ds = D.load(str(tmp_path / "blobs.npz"), D.DataOptions(captions="a photo of a {class}", image_size=8,
                                              tokenizer="bpe", vocab_size=300, context=16))
    train, held = ds.split(32)
    model = CLIP(CLIPConfig(**TINY, image_encoder=encoder, lr=3e-3), DataInfo.of(train))
    assert model.templates() == ["a photo of a {class}"]
    before = contrastive.zero_shot(model, held)
    Trainer(model, train, TrainConfig(steps=80, batch_size=32, progress=False, device="cpu")).fit()
    after = contrastive.zero_shot(model, held)
    assert after >= 0.9 and after > before, (before, after)
    out = model.evaluate(held.batch(torch.arange(16)))
    assert out["zero_shot_accuracy"] >= 0.8 and out["recall@1_image_to_text"] >= 0.8


def test_a_clip_run_is_a_feature_space_and_a_scorer(tmp_path):
    root = captioned_images(tmp_path, n=48)
    spec = launch.resolve("clip", data=str(root), preset="tiny",
                          train={"steps": 30, "batch_size": 16, "progress": False})
    run = launch.train(spec, tmp_path / "clip", progress=False, log=lambda *a: None)
    ex = get_extractor(f"clip:{run.path}", (3, 16, 16))
    f = ex(torch.rand(5, 3, 16, 16))
    assert f.shape == (5, 16) and "clip" in ex.name and "adapted" in ex.note
    assert (run.path / "showcase" / "similarity.png").is_file()
    model, _ = load_model(run.path)
    _, held = launch.load_data(spec)
    r = contrastive.retrieval(model, held)
    assert set(r) == {f"{w}_recall@{k}" for w in ("image_to_text", "text_to_image") for k in (1, 5)}
    assert all(0 <= v <= 1 for v in r.values()) and r["image_to_text_recall@5"] >= r["image_to_text_recall@1"]
    x = held.batch(torch.arange(len(held)))["x"]
    captions = [cs[0] for cs in contrastive.caption_texts(held)]
    score = contrastive.clip_score(model, x, captions)
    assert 0 <= score <= 100
    with pytest.raises(ValueError, match="needs class labels"):
        contrastive.zero_shot(model, held)


def test_clip_refuses_images_without_captions(image_data):
    from genzoo.errors import GenzooError
    with pytest.raises(GenzooError, match="needs captioned images"):
        CLIP(CLIPConfig(**TINY), DataInfo.of(image_data))
