HELP = "train several families on the same data and budget, evaluate them alike, write a report"
DESCRIPTION = """Train each family on the same data with the same budget (or take existing run
folders), evaluate all in the same feature space against the same held-out images, and write
OUT/report.html (one table, samples side by side, loss curves, latent plots) and
OUT/results.json. Runs go to OUT/runs/FAMILY; a run already there is reused, so an interrupted
compare continues where it stopped.

--budget: steps (500, 500steps) or wall-clock minutes per family (5min). With minutes, each
family trains until its time is spent (its step count is then whatever it reached).

examples:
  genzoo compare vae dcgan realnvp --data fashion.npz --budget 2000 --out /tmp/cmp
  genzoo compare vae dcgan --data digits --budget 3min --out /tmp/cmp2 --set dcgan.image_size=32
      (dcgan.X: a setting for that family only)
  genzoo compare runs/vae-1 runs/dcgan-1 --out /tmp/cmp3        (existing runs)"""

import re

BIG = 10 ** 9      # the step cap of a minutes budget: time, not steps, ends those runs


def add_arguments(p):
    p.add_argument("families", nargs="+", metavar="FAMILY_OR_RUN")
    p.add_argument("--data", help="data spec every family trains on (and the reference)")
    p.add_argument("--budget", default="1000", help="per family: N steps (default 1000) or Mmin")
    p.add_argument("--out", required=True, help="folder for the runs, results.json and report.html")
    p.add_argument("--features", default="auto", help="feature space (see `genzoo eval -h`)")
    p.add_argument("-n", type=int, default=1000, help="samples drawn from each model")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="setting for every family that has it (train.X, data.X reach all); "
                   "FAMILY.KEY=VALUE for one family only, e.g. ddpm.image_size=32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-progress", action="store_true")


def parse_budget(text: str) -> tuple[int | None, float | None]:
    """'500' / '500steps' -> (500, None); '5min' / '2.5m' -> (None, 5.0)."""
    from genzoo.errors import GenzooError
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(steps?|m|min|mins|minutes?)?\s*", text)
    if not m:
        raise GenzooError(f"--budget {text!r}: give steps (e.g. 500) or minutes (e.g. 5min)")
    value, unit = float(m.group(1)), m.group(2) or "steps"
    if value <= 0:
        raise GenzooError(f"--budget {text!r}: must be positive")
    if unit.startswith("step"):
        if not value.is_integer():
            raise GenzooError(f"--budget {text!r}: a step count is a whole number")
        return int(value), None
    return None, value


def _overrides_for(name: str, entry, overrides: list[str]) -> list[str]:
    """The --set items for family ``name``: FAMILY.KEY=V ones for it alone (prefix removed),
    plain KEY=V ones its config knows, and train.X / data.X ones, which reach every family."""
    import dataclasses
    names = {f.name for f in dataclasses.fields(entry.config)}
    mine = []
    for o in overrides:
        key = o.split("=", 1)[0].strip()
        section, _, rest = key.partition(".")
        if section in ("train", "data") or key in names:
            mine.append(o)
        elif section == name and rest:
            mine.append(o[len(name) + 1:])
    return mine


def train_one(name: str, args, steps, minutes, log=print):
    from pathlib import Path

    from genzoo import registry
    from genzoo.errors import GenzooError
    from genzoo.training import launch
    from genzoo.viz.samples import save_samples
    out = Path(args.out) / "runs" / name
    if (out / "config.yaml").is_file() and any((out / "checkpoints").glob("*.safetensors")):
        log(f"compare: {name}: reusing {out}")
        return out
    entry = registry.get(name)
    if entry.taxonomy == "discriminative":
        raise GenzooError(f"compare: {name} is not generative")
    if args.data is None:
        raise GenzooError("compare: --data SPEC is needed to train families")
    train = {"steps": steps if steps is not None else BIG, "seed": args.seed,
             "device": args.device, "max_minutes": minutes or 0.0}
    description = launch.resolve(name, data=args.data, train=train,
                                 overrides=_overrides_for(name, entry, args.overrides))
    if out.exists() and (out / "config.yaml").is_file():        # a run stopped before any checkpoint
        import shutil
        shutil.rmtree(out)
    launch.train(description, out, progress=not args.no_progress, log=log, writer=save_samples)
    return out


def run(args) -> int:
    import json
    from pathlib import Path

    from genzoo import config as C
    from genzoo import data as D
    from genzoo.errors import GenzooError
    from genzoo.evaluation import modalities
    from genzoo.evaluation.run_eval import evaluate_run
    from genzoo.training.run import RunDir
    from genzoo.viz.report import write_report
    from genzoo.viz.results import markdown

    steps, minutes = parse_budget(args.budget)
    out = Path(args.out)
    runs = []
    from genzoo import registry
    known = registry.families()
    for item in args.families:      # a family name wins; write ./NAME for a run folder NAME
        if item in known or not (Path(item) / "config.yaml").is_file():
            runs.append(train_one(item, args, steps, minutes))
        else:
            runs.append(Path(item))
    spec = args.data or RunDir.open(runs[0]).description["data"]["spec"]
    data_sets = {"data": {}}       # the reference is read with the same --set data.X as training
    C.apply_overrides(data_sets, [o for o in args.overrides if o.startswith("data.")], "data")
    options = C.from_dict(D.DataOptions, data_sets["data"], where="data options")
    common = D.load(spec, options)
    shared = getattr(modalities.get(common.modality), "shared_reference", False)
    reference = common.split(options.holdout) if shared else None
    if reference is not None and reference[1] is None:
        raise GenzooError(f"{spec}: nothing held out for the reference")
    results = []
    for path in runs:
        print(f"compare: evaluating {path}", flush=True)
        results.append(evaluate_run(path, features=args.features, n=args.n, seed=args.seed,
                                    device=args.device, reference=reference))
        print(f"compare: {path.name}: {results[-1]['eval_seconds']:.0f} s, of which sampling "
              f"{results[-1]['seconds_per_sample'] * args.n:.0f} s", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    report = write_report(results, out / "report.html",
                          title=f"genzoo compare on {spec} (budget {args.budget} per family)")
    print(markdown(results))
    for note in sorted({n for r in results for n in r.get("notes", [])}):
        print(f"note: {note}")
    print(f"feature space: {results[0].get('features', {}).get('name', '–')}")
    print(f"written: {report}")
    return 0
