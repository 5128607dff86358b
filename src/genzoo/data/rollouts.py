"""Rollouts recorded from a Gymnasium environment: the data of a world model.

Ha and Schmidhuber (2018) first let a random policy drive the environment and record what it
sees; V learns the frames, M the sequences of their codes with the actions taken. A data spec
names such a collection:

    gym:CarRacing-v3?episodes=100&steps=300&policy=brownian&workers=2&seed=0&size=64

Any Gymnasium environment with image observations (H, W[, C] uint8) and a Box (1-d, bounded)
or Discrete action space can be named; ``gym:module:Env-v0`` imports ``module`` first (which
registers the environment, in worker processes too). Episode i is played with seeds drawn from
(seed, i) alone, so a spec gives the same data with any number of ``workers``, and asking for
more episodes later adds to those already recorded. Each episode is written, compressed, as
``episode_000000.npz`` (frames uint8 (L, C, S, S) resized to S = ``size``, actions, rewards,
dones) in ``$GENZOO_CACHE/rollouts/ENV-HASH/`` beside a ``rollouts.json`` that describes the
environment; a killed collection keeps the episodes it finished. Such a folder is a data spec
too (copy it anywhere and name it).

Items: one per episode, x = frames uint8 (T, C, S, S) with the fields actions (T, A) float
(one-hot for Discrete), rewards (T,), dones (T,) (1 where the episode terminated) and mask
(T,) (1 on the steps that happened; shorter episodes are padded with zeros). With
``data.view=frames`` one item per frame that happened: images, for V.

Why a data spec rather than a command that writes a file: a pipeline's stages are runs, and the
first stage that reads the spec records it; the later stages name the same spec and read the
same cached episodes, so one ``genzoo pipeline`` collects, trains V and M and evolves C, and
resumes a killed collection like any stage.

Policies: ``random`` draws every action uniformly; ``brownian`` lets a Box action wander
(a_{t+1} = clip(a_t + 0.1 (high - low) eps)) and repeats a Discrete action with probability
0.9: a car driven by uniform noise jitters in place, one driven by a random walk explores the
track.
"""
from __future__ import annotations

import functools
import hashlib
import json
import multiprocessing
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np
import torch
from tqdm import tqdm

from genzoo.data import DataOptions, reader, scheme
from genzoo.data.cache import cache_dir
from genzoo.data.dataset import TensorDataset
from genzoo.data.images import adapt_images, image_dataset
from genzoo.errors import GenzooError

POLICIES = ("random", "brownian")
VIEWS = (None, "frames")
FIELDS = {"actions": "action", "rewards": "reward", "dones": "flag", "mask": "flag"}


@dataclass(frozen=True)
class Collection:
    env: str
    episodes: int = 100
    steps: int = 1000       # the longest episode kept (an episode may end sooner)
    seed: int = 0
    policy: str = "random"
    size: int = 64          # frames are resized to size x size
    workers: int = 0        # processes that play episodes; 0 = this one

    @property
    def key(self) -> str:
        """What the recorded episodes depend on (not how many, nor who played them)."""
        ident = json.dumps([self.env, self.steps, self.seed, self.policy, self.size, 1])
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.env)
        return f"{safe}-{hashlib.sha256(ident.encode()).hexdigest()[:12]}"


def parse(rest: str) -> Collection:
    """``ENV?key=value&...`` -> a checked :class:`Collection`."""
    where = f"gym:{rest}"
    env, _, query = rest.partition("?")
    if not env:
        raise GenzooError(f"{where}: name an environment (gym:CarRacing-v3?episodes=100)")
    settings: dict = {"env": env}
    types = {k: type(v) for k, v in asdict(Collection("x")).items()}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in types or key == "env":
            raise GenzooError(f"{where}: unknown setting {key!r} "
                              f"({', '.join(k for k in types if k != 'env')})")
        try:
            settings[key] = types[key](value)
        except ValueError:
            raise GenzooError(f"{where}: {key}={value!r} is not {types[key].__name__}") from None
    c = Collection(**settings)
    if c.episodes < 1 or c.steps < 1 or c.size < 4 or c.seed < 0 or c.workers < 0:
        raise GenzooError(f"{where}: episodes and steps must be >= 1, size >= 4, seed and "
                          "workers >= 0")
    if c.policy not in POLICIES:
        raise GenzooError(f"{where}: policy={c.policy!r}: one of {', '.join(POLICIES)}")
    return c


# -- the environment ----------------------------------------------------------------------------
def make_env(env_id: str):
    try:
        import gymnasium as gym
    except ImportError:
        raise GenzooError("rollouts: gymnasium is not installed (pip install 'genzoo[world]')") \
            from None
    try:
        return gym.make(env_id)
    except (gym.error.DependencyNotInstalled, ImportError) as e:
        raise GenzooError(f"gym:{env_id}: needs a package that is missing ({e}); for Box2D "
                          "environments: pip install 'genzoo[world]'") from None
    except gym.error.Error as e:
        raise GenzooError(f"gym:{env_id}: cannot make the environment ({e})") from None


def action_space(space, env_id: str) -> dict:
    """The environment's action space as plain data (saved with the rollouts and the runs)."""
    kind = type(space).__name__
    if kind == "Discrete":
        return {"kind": "discrete", "n": int(space.n), "start": int(space.start)}
    if kind == "Box" and len(space.shape) == 1 and np.all(np.isfinite(space.low)) \
            and np.all(np.isfinite(space.high)):
        return {"kind": "box", "low": space.low.astype(float).tolist(),
                "high": space.high.astype(float).tolist()}
    raise GenzooError(f"gym:{env_id}: action space {space} is not Discrete or a bounded 1-d Box")


def action_size(space: dict) -> int:
    return space["n"] if space["kind"] == "discrete" else len(space["low"])


def action_vectors(actions: np.ndarray, space: dict) -> torch.Tensor:
    """Actions as the environment takes them -> float vectors (L, A): Box values as they are,
    Discrete ones one-hot."""
    a = torch.as_tensor(np.asarray(actions))
    if space["kind"] == "discrete":
        return torch.nn.functional.one_hot(a.long() - space["start"], space["n"]).float()
    return a.float().reshape(len(a), -1)


def frame(obs, size: int, env_id: str = "") -> torch.Tensor:
    """An image observation (H, W[, C]) uint8 -> uint8 (C, size, size)."""
    a = np.asarray(obs)
    if a.dtype != np.uint8 or a.ndim not in (2, 3):
        raise GenzooError(f"gym:{env_id}: observations are {a.dtype} {a.shape}, not images "
                          "(uint8 H x W or H x W x C)")
    x = torch.from_numpy(np.ascontiguousarray(a if a.ndim == 3 else a[..., None]))
    return adapt_images(x.permute(2, 0, 1)[None], size, "resize")[0][0]


def random_policy(name: str, space: dict, rng: np.random.Generator):
    """A function () -> the next action of a random policy."""
    if space["kind"] == "discrete":
        n, start, last = space["n"], space["start"], [None]

        def discrete():
            if last[0] is None or name == "random" or rng.random() >= 0.9:
                last[0] = start + int(rng.integers(n))
            return last[0]
        return discrete
    low, high = np.array(space["low"]), np.array(space["high"])
    a = [rng.uniform(low, high)]

    def box():
        if name == "random":
            return rng.uniform(low, high).astype(np.float32)
        a[0] = np.clip(a[0] + 0.1 * (high - low) * rng.standard_normal(len(low)), low, high)
        return a[0].astype(np.float32)
    return box


_envs: dict = {}


def play(c: Collection, i: int) -> dict[str, np.ndarray]:
    """Episode ``i`` of collection ``c``, a function of (c, i) alone."""
    env = _envs.get(c.env) or _envs.setdefault(c.env, make_env(c.env))
    env_seed, act_seed = np.random.SeedSequence([c.seed, i]).generate_state(2)
    obs, _ = env.reset(seed=int(env_seed))
    space = action_space(env.action_space, c.env)
    act = random_policy(c.policy, space, np.random.default_rng(act_seed))
    frames, actions, rewards, dones = [], [], [], []
    for _ in range(c.steps):
        frames.append(frame(obs, c.size, c.env).numpy())
        a = act()
        obs, r, terminated, truncated, _ = env.step(a)
        actions.append(a)
        rewards.append(r)
        dones.append(terminated)
        if terminated or truncated:
            break
    return {"frames": np.stack(frames), "actions": np.asarray(actions),
            "rewards": np.asarray(rewards, np.float32), "dones": np.asarray(dones, bool)}


def _episode_path(folder: Path, i: int) -> Path:
    return folder / f"episode_{i:06d}.npz"


def _record(c: Collection, folder: Path, i: int) -> tuple[int, float]:
    ep = play(c, i)
    tmp = folder / f".tmp-{os.getpid()}-{i}.npz"
    np.savez_compressed(tmp, **ep)
    tmp.replace(_episode_path(folder, i))            # an episode file exists whole or not at all
    return len(ep["rewards"]), float(ep["rewards"].sum())


def _init_worker() -> None:
    torch.set_num_threads(1)


def record(c: Collection, progress: bool = True) -> Path:
    """Play the episodes of ``c`` not recorded yet; returns the folder that holds them."""
    folder = cache_dir() / "rollouts" / c.key
    if not (folder / "rollouts.json").is_file():
        env = make_env(c.env)          # first: an environment that cannot run leaves no folder
        obs, _ = env.reset(seed=0)
        info = {"env": c.env, "steps": c.steps, "seed": c.seed, "policy": c.policy,
                "size": c.size, "channels": int(frame(obs, c.size, c.env).shape[0]),
                "action_space": action_space(env.action_space, c.env)}
        env.close()
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / ".rollouts.json.tmp"
        tmp.write_text(json.dumps(info, indent=1))
        tmp.replace(folder / "rollouts.json")
    missing = [i for i in range(c.episodes) if not _episode_path(folder, i).is_file()]
    if not missing:
        return folder
    work = functools.partial(_record, c, folder)
    bar = tqdm(total=len(missing), disable=not progress, unit="episode", dynamic_ncols=True,
               desc=f"recording {c.env} ({c.policy} policy)")
    steps = 0
    if c.workers:
        with multiprocessing.get_context("spawn").Pool(c.workers, _init_worker) as pool:
            for n, _ in pool.imap_unordered(work, missing):
                steps += n
                bar.update(1)
    else:
        for i in missing:
            steps += work(i)[0]
            bar.update(1)
    rate = steps / max(bar.format_dict["elapsed"], 1e-9)
    bar.set_postfix_str(f"{rate:.0f} env steps/s")
    bar.close()
    return folder


# -- reading -----------------------------------------------------------------------------------
@scheme("gym")
def gym_rollouts(rest: str, options: DataOptions) -> TensorDataset:
    c = parse(rest)
    folder = record(c)
    n = c.episodes
    if options.max_items is not None and options.view is None:
        n = min(n, options.max_items)              # episodes are items: read only those
    return read(folder, f"gym:{rest}", options, n)


@reader(lambda p: p.is_dir() and (p / "rollouts.json").is_file())
def read_folder(path: Path, options: DataOptions | None = None) -> TensorDataset:
    return read(path, str(path), options or DataOptions())


def read(folder: Path, source: str, options: DataOptions, episodes: int | None = None
         ) -> TensorDataset:
    """The first ``episodes`` recorded episodes in ``folder`` (all, if None) as a dataset."""
    if options.view not in VIEWS:
        raise GenzooError(f"{source}: data.view={options.view!r}: rollouts offer 'frames' "
                          "(one item per frame), or none (one item per episode)")
    try:
        info = json.loads((folder / "rollouts.json").read_text())
        if episodes is None:
            episodes = len(list(folder.glob("episode_*.npz")))
        eps = []
        for i in range(episodes):
            with np.load(_episode_path(folder, i)) as f:
                eps.append({k: f[k] for k in ("frames", "actions", "rewards", "dones")})
    except (OSError, ValueError, KeyError) as e:
        raise GenzooError(f"{source}: cannot read the rollouts in {folder} ({e})") from None
    if not eps:
        raise GenzooError(f"{source}: {folder} holds no episode")
    meta = {k: info[k] for k in ("env", "policy", "seed", "action_space")}
    meta.update(episodes=len(eps), episode_steps=info["steps"], frame_size=info["size"],
                mean_return=float(np.mean([e["rewards"].sum() for e in eps])))
    if options.view == "frames":
        x = np.concatenate([e["frames"] for e in eps])
        ds = image_dataset(x, source, options, meta={**meta, "view": "frames"})
        return ds
    T, space = info["steps"], info["action_space"]
    N, (C, S, _) = len(eps), eps[0]["frames"].shape[1:]
    x = torch.zeros(N, T, C, S, S, dtype=torch.uint8)
    items = {k: torch.zeros(N, T) for k in ("rewards", "dones", "mask")}
    items["actions"] = torch.zeros(N, T, action_size(space))
    for i, e in enumerate(eps):
        L = len(e["rewards"])
        x[i, :L] = torch.from_numpy(e["frames"])
        items["actions"][i, :L] = action_vectors(e["actions"], space)
        items["rewards"][i, :L] = torch.from_numpy(e["rewards"])
        items["dones"][i, :L] = torch.from_numpy(e["dones"].astype(np.float32))
        items["mask"][i, :L] = 1
    if options.image_size is not None or options.channels is not None:
        flat, note = adapt_images(x.flatten(0, 1), options.image_size, options.resize,
                                  options.channels)
        x = flat.view(N, T, *flat.shape[1:])
        if note:
            meta["notes"] = [note]
    return TensorDataset(x=x, modality="rollout", source=source, items=items,
                         meta={**meta, "field_modality": FIELDS})
