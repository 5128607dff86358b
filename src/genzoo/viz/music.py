"""Music samples as files a person can open and hear.

The writer for modality "music" decodes samples of any representation (the data's meta says
which) to scores and writes, for sample i, ``STEM_i.mid``; ``STEM_i.musicxml`` for the
notated representations (token pairs, the voice grid), for a notation program, when music21
is installed; ``STEM_i.wav``, rendered by FluidSynth with a General MIDI soundfont, when both
are installed (Debian: ``apt-get install fluidsynth fluid-soundfont-gm``; another soundfont
with ``GENZOO_SOUNDFONT=path.sf2``); and one picture of all samples' piano rolls,
``STEM.png``. Sound, notation and the picture cover the first 8 samples (rendering is slow);
MIDI covers them all. What cannot be written is said in one line.

Its columns in the results table (evaluation/music.py measures them): the pitch-class and
duration histogram distances to the held-out pieces, each beside the training pieces'
distance (the control), and the copied run beside the held-out pieces' run.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from genzoo.data.music import Score, decode, write_midi
from genzoo.data.music.score import to_music21
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo
from genzoo.viz.results import Cell, Column, columns
from genzoo.viz.samples import writer

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
INSTALL = "apt-get install fluidsynth fluid-soundfont-gm"
NOTATED = ("tokens", "grid")
SHOWN = 8                       # samples rendered as sound, notation and picture


def sound_missing() -> str | None:
    """Why WAV audio cannot be rendered here, or None when it can."""
    if not shutil.which("fluidsynth"):
        return f"FluidSynth is not installed (Debian: {INSTALL})"
    sf = soundfont()
    if not sf.is_file():
        return f"no soundfont at {sf} (Debian: {INSTALL}, or set GENZOO_SOUNDFONT)"
    return None


def soundfont() -> Path:
    return Path(os.environ.get("GENZOO_SOUNDFONT") or SOUNDFONT)


def render_wav(midi: Path, wav: Path, rate: int = 44100) -> Path:
    """``midi`` played by FluidSynth into a 16-bit stereo WAV file at ``rate`` Hz."""
    cmd = ["fluidsynth", "-ni", "-q", "-g", "0.8", "-r", str(rate), "-F", str(wav),
           str(soundfont()), str(midi)]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise GenzooError(f"{wav}: FluidSynth failed ({e})") from None
    if run.returncode != 0 or not wav.is_file():
        msg = " ".join((run.stderr or run.stdout).split())[:200]
        raise GenzooError(f"{wav}: FluidSynth failed (exit {run.returncode}: {msg})")
    return wav


def write_musicxml(score: Score, path: Path) -> Path:
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # music21 warns while it lays out notation
        to_music21(score).write("musicxml", fp=str(path))
    return path


def piano_roll_png(scores: list[Score], path: Path, titles: list[str] | None = None) -> Path:
    """One panel per score: each note a bar at its pitch and time, coloured by track."""
    from genzoo.viz.plots import plt, save_figure
    fig, axes = plt.subplots(len(scores), 1, figsize=(10, 2.2 * len(scores)), squeeze=False)
    colors = plt.get_cmap("tab10").colors
    for i, (ax, s) in enumerate(zip(axes[:, 0], scores)):
        for n in s.notes:
            ax.broken_barh([(n.start, n.end - n.start)], (n.pitch - 0.4, 0.8),
                           color=colors[n.track % len(colors)])
        if s.notes:
            lo, hi = s.pitch_range()
            ax.set_ylim(lo - 2, hi + 2)
            ax.set_xlim(0, s.end)
        ax.set_ylabel("MIDI pitch")
        ax.set_title(titles[i] if titles else f"sample {i}", fontsize=9)
    axes[-1, 0].set_xlabel("quarter notes")
    return save_figure(fig, path, dpi=80)


@writer("music")
def write_music(x, info: DataInfo, stem: Path, quiet: bool = False, **extra) -> list[Path]:
    """``STEM_i.mid`` (and ``.musicxml``, ``.wav`` when possible) per sample, ``STEM.png``.

    ``x`` is what the family's sample() returns: ids (n, T), piano rolls (n, bars, steps,
    pitches, tracks), or for token pairs the note ids with ``duration=`` ids beside them (a
    dict {"x", "duration"} or a pair is read too)."""
    duration = extra.get("duration")
    if isinstance(x, dict):
        x, duration = x["x"], x.get("duration", duration)
    elif isinstance(x, (tuple, list)) and len(x) == 2 and info.meta.get("representation") == "tokens":
        x, duration = x
    scores = decode(x, info.meta, duration=duration)
    stem.parent.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    sound = sound_missing()
    notation = info.meta.get("representation") in NOTATED
    if notation:
        try:
            import music21  # noqa: F401
        except ModuleNotFoundError:
            notation = False
            _say("genzoo: no MusicXML: music21 is not installed (pip install 'genzoo[music]')",
                 quiet)
    for i, s in enumerate(scores):
        one = stem.with_name(f"{stem.name}_{i}")
        files.append(write_midi(s, one.with_suffix(".mid")))
        if notation and i < SHOWN:
            files.append(write_musicxml(s, one.with_suffix(".musicxml")))
        if sound is None and i < SHOWN:
            files.append(render_wav(one.with_suffix(".mid"), one.with_suffix(".wav")))
    if sound:
        _say(f"genzoo: no WAV audio: {sound}", quiet)
    elif len(scores) > SHOWN:
        _say(f"genzoo: WAV audio of the first {SHOWN} of {len(scores)} samples (the MIDI files "
             "play them all)", quiet)
    files.append(piano_roll_png(scores[:SHOWN], stem.with_suffix(".png")))
    return files


def _say(line: str, quiet: bool) -> None:
    if not quiet:
        print(line, file=sys.stderr)


def _beside(key: str, control: str, label: str, spec: str):
    def show(r: dict) -> Cell:
        m = r.get("metrics", {})
        if key not in m:
            return Cell()
        beside = f" ({label} {format(m[control], spec)})" if control in m else ""
        return Cell(format(m[key], spec) + beside)
    return show


@columns("music")
def music_columns(results: list[dict]) -> list[Column]:
    """Histogram distances (total variation) and the copied run, beside their controls."""
    return [Column("pitch-class TV", _beside("pitch_class_distance", "train_pitch_class_distance",
                                             "train", ".3f")),
            Column("duration TV", _beside("duration_distance", "train_duration_distance",
                                          "train", ".3f")),
            Column("copied run (notes)", _beside("copied_run", "held_out_copied_run",
                                                 "held-out", ".1f"))]
