"""Videos of rollouts (what a world model shows, Ha and Schmidhuber 2018: real frames, V's
reconstructions and M's dream from the same start, side by side): the GIF, and the MP4 beside
it when PyAV is installed, with one line and the GIF alone when it is not."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence

from genzoo.viz import rollout

COLOURS = torch.eye(3)          # real | reconstruction | dream: red, green, blue sequences


def rows(T=10, side=16, colours=COLOURS) -> list[torch.Tensor]:
    """One sequence per colour: a still frame of that colour, with a white square moving
    along the diagonal over time."""
    out = []
    for c in colours:
        x = c.view(1, -1, 1, 1).expand(T, -1, side, side).clone()
        for t in range(T):
            x[t, :, t % side, t % side] = 1
        out.append(x)
    return out


@pytest.fixture
def no_pyav(monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)        # import av -> ImportError
    rollout._pyav.cache_clear()
    yield
    rollout._pyav.cache_clear()


def test_the_mp4_is_written_beside_the_gif_and_decodes_to_every_step_side_by_side(tmp_path):
    av = pytest.importorskip("av", reason="MP4 videos need PyAV (genzoo[world])")
    files = rollout.save_videos(rows(T=10), tmp_path / "show" / "real_recon_dream.gif", scale=2)
    gif, mp4 = tmp_path / "show" / "real_recon_dream.gif", tmp_path / "show" / "real_recon_dream.mp4"
    assert files == [gif, mp4]
    with Image.open(gif) as g:
        size = g.size                                   # 3 frames of 16 and 4 pads of 2, x2
        assert size == (2 * (3 * 16 + 4 * 2), 2 * (16 + 2 * 2)) and g.n_frames == 10
        first = np.asarray(next(ImageSequence.Iterator(g)).convert("RGB")).astype(int)
    with av.open(str(mp4)) as video:
        frames = [f.to_ndarray(format="rgb24").astype(int) for f in video.decode(video=0)]
    assert len(frames) == 10 and frames[0].shape == (size[1], size[0], 3)
    assert np.abs(frames[0] - first).mean() < 12        # the same picture, but for the codec
    for k in range(3):                                  # red | green | blue, left to right
        x0 = 2 * (2 + k * 18)
        middle = frames[4][2 * 12:2 * 16, x0 + 2 * 10:x0 + 2 * 14].reshape(-1, 3).mean(0)
        assert middle.argmax() == k and middle[k] > 200, (k, middle)
    assert not list(tmp_path.glob("show/.*"))           # no temporary file left behind


def test_odd_sides_and_grey_frames_are_padded_to_what_h264_takes(tmp_path):
    av = pytest.importorskip("av", reason="MP4 videos need PyAV (genzoo[world])")
    grey = [torch.rand(7, 1, 5, 5, generator=torch.Generator().manual_seed(0))]
    path = rollout.save_mp4(grey, tmp_path / "grey.mp4", scale=1)
    with av.open(str(path)) as video:
        frames = list(video.decode(video=0))
    assert len(frames) == 7 and (frames[0].width, frames[0].height) == (10, 10)   # 9x9 -> 10x10


def test_without_pyav_one_line_says_so_once_and_the_gif_stands_alone(tmp_path, capsys, no_pyav):
    first = rollout.save_videos(rows(T=4), tmp_path / "a.gif")
    second = rollout.save_videos(rows(T=4), tmp_path / "b.gif")
    assert first == [tmp_path / "a.gif"] and second == [tmp_path / "b.gif"]
    assert not list(tmp_path.glob("*.mp4")) and Image.open(tmp_path / "a.gif").n_frames == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "PyAV is not installed (pip install 'genzoo[world]')" in err


def test_a_world_model_sample_writes_the_mp4_too(tmp_path):
    pytest.importorskip("av", reason="MP4 videos need PyAV (genzoo[world])")
    from genzoo.models.base import DataInfo
    from genzoo.viz.samples import save_samples
    x = torch.stack(rows(T=6))
    files = save_samples(x, DataInfo("rollout", tuple(x.shape[1:])), tmp_path / "dream")
    assert {p.suffix for p in files} == {".png", ".gif", ".mp4", ".npz"}
    assert all(p.is_file() for p in files)
