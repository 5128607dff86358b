"""What a trained classifier shows: its held-out accuracy and confusion matrix."""
from __future__ import annotations

import json
from pathlib import Path

from genzoo.models.classifier import accuracy
from genzoo.viz.plots import plt, save_figure


def showcase(model, data, out, generator=None):
    """The held-out accuracy and confusion matrix, as a picture and a JSON file."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    acc, conf = accuracy(model, data)
    names = data.class_names or [str(i) for i in range(len(conf))]
    (out / "accuracy.json").write_text(json.dumps({"accuracy": acc, "items": len(data),
                                                   "confusion": conf.tolist(), "classes": names}))
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.imshow(conf.numpy(), cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"accuracy {acc:.3f} on {len(data)} held-out items")
    save_figure(fig, out / "confusion.png")
    return [out / "confusion.png", out / "accuracy.json"]
