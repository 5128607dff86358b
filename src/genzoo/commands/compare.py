HELP = "train several families on the same data and budget, evaluate them alike, write a report"
DESCRIPTION = """Train each family on the same data with the same budget (or take existing run
folders), evaluate all in the same feature space against the same held-out images, and write
OUT/report.html (one table, samples side by side, loss curves, latent plots) and
OUT/results.json. Runs go to OUT/runs/FAMILY; a run already there is reused, so an interrupted
compare continues where it stopped.

--budget: steps (500, 500steps) or wall-clock minutes per family (5min). A budget in minutes
covers the whole row: training, sampling and measuring. Each family's sampling is timed on its
untrained model first (sampling costs the same before and after training); the time its -n
samples will take, and a tenth of the budget for measuring, are set aside, and training gets
the rest. A family whose sampling alone would take more than 40% of the budget draws fewer
samples (at least 50), and says so. Families sample with their fast options (a diffusion
model's DPM-Solver++ at 20 steps), with budgets in steps too. The report says what each row
cost.

examples:
  genzoo compare vae dcgan realnvp --data fashion.npz --budget 2000 --out /tmp/cmp
  genzoo compare vae dcgan --data digits --budget 3min --out /tmp/cmp2 --set dcgan.image_size=32
      (dcgan.X: a setting for that family only)
  genzoo compare runs/vae-1 runs/dcgan-1 --out /tmp/cmp3        (existing runs)"""

import re

BIG = 10 ** 9      # the step cap of a minutes budget: time, not steps, ends those runs
SAMPLING_SHARE = 0.4    # most of a minutes budget that sampling may take
MEASURE_SHARE = 0.1     # set aside for measuring the samples
TRAIN_SHARE = 0.25      # least of the budget that training gets, whatever sampling costs
MIN_SAMPLES = 50        # fewest samples a family is measured on
PROBE_SAMPLES = 8       # samples timed on the untrained model


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


def probe_sampling(description, args) -> float:
    """Seconds per sample of the family with its fast options, timed on its untrained model."""
    import copy

    from genzoo.evaluation.run_eval import draw, fast_options
    from genzoo.training import launch
    from genzoo.training.trainer import resolve_device
    model, _, _ = launch.prepare(copy.deepcopy(description), progress=False, log=lambda *a: None)
    model = model.to(resolve_device(args.device)).eval()
    options = fast_options(model)
    draw(model, 1, args.seed, options)          # warm-up: first calls pay for lazy set-up
    return draw(model, min(args.n, PROBE_SAMPLES), args.seed, options)[1]


def plan(name: str, minutes: float, per_sample: float, probe_s: float, n: int) -> dict:
    """How one family spends a minutes budget: the samples it draws (at most ``n``, at most
    SAMPLING_SHARE of the budget, at least MIN_SAMPLES) and the minutes it trains: what is left
    after the probe, the sampling and MEASURE_SHARE for measuring (at least TRAIN_SHARE)."""
    total = minutes * 60
    drawn = min(n, max(MIN_SAMPLES, int(SAMPLING_SHARE * total / max(per_sample, 1e-9))))
    left = total - probe_s - drawn * per_sample - MEASURE_SHARE * total
    notes = [f"drew {drawn} samples, not {n}: at {per_sample:.3g} s each, more would not fit "
             "the budget"] if drawn < n else []
    return {"family": name, "budget_s": total, "n": drawn,
            "train_minutes": max(TRAIN_SHARE * total, left) / 60,
            "seconds_per_sample": per_sample, "probe_s": probe_s, "notes": notes}


def train_one(name: str, args, steps, minutes, log=print) -> tuple:
    """(run folder, budget plan or None) of family ``name``, trained unless already there."""
    import json
    import time
    from pathlib import Path

    from genzoo import registry
    from genzoo.errors import GenzooError
    from genzoo.training import launch
    from genzoo.viz.samples import save_samples
    out = Path(args.out) / "runs" / name
    plan_file = Path(args.out) / "runs" / f"{name}.budget.json"
    if (out / "config.yaml").is_file() and any((out / "checkpoints").glob("*.safetensors")):
        log(f"compare: {name}: reusing {out}")
        return out, json.loads(plan_file.read_text()) if plan_file.is_file() else None
    entry = registry.get(name)
    if entry.taxonomy == "discriminative":
        raise GenzooError(f"compare: {name} is not generative")
    if args.data is None:
        raise GenzooError("compare: --data SPEC is needed to train families")
    train = {"steps": steps if steps is not None else BIG, "seed": args.seed,
             "device": args.device, "max_minutes": minutes or 0.0}
    overrides = _overrides_for(name, entry, args.overrides)
    description = launch.resolve(name, data=args.data, train=train, overrides=overrides)
    budget = None
    if minutes:
        t = time.perf_counter()
        per_sample = probe_sampling(description, args)
        budget = plan(name, minutes, per_sample, time.perf_counter() - t, args.n)
        log(f"compare: {name}: {per_sample:.3g} s per sample; {budget['n']} samples, "
            f"{budget['train_minutes']:.2f} of {minutes:g} min for training")
        train["max_minutes"] = budget["train_minutes"]
        description = launch.resolve(name, data=args.data, train=train, overrides=overrides)
    if out.exists() and (out / "config.yaml").is_file():        # a run stopped before any checkpoint
        import shutil
        shutil.rmtree(out)
    launch.train(description, out, progress=not args.no_progress, log=log, writer=save_samples)
    if budget is not None:
        plan_file.write_text(json.dumps(budget, indent=1))
    return out, budget


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
    budgets = {}
    for item in args.families:      # a family name wins; write ./NAME for a run folder NAME
        if item in known or not (Path(item) / "config.yaml").is_file():
            path, budgets[item] = train_one(item, args, steps, minutes)
            runs.append(path)
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
    for item, path in zip(args.families, runs):
        budget = budgets.get(item) or {}
        n = budget.get("n", args.n)
        print(f"compare: evaluating {path}", flush=True)
        r = evaluate_run(path, features=args.features, n=n, seed=args.seed, device=args.device,
                         reference=reference, fast=True)
        r["notes"] += budget.get("notes", [])
        if budget:
            r["budget_seconds"] = budget["budget_s"]
            r["probe_seconds"] = budget["probe_s"]
        results.append(r)
        print(f"compare: {path.name}: {r['eval_seconds']:.0f} s, of which sampling "
              f"{r['seconds_per_sample'] * n:.0f} s", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    report = write_report(results, out / "report.html",
                          title=f"genzoo compare on {spec} (budget {args.budget} per family)")
    print(markdown(results))
    shared = set.intersection(*(set(r.get("notes", [])) for r in results))
    for note in sorted(shared):
        print(f"note: {note}")
    for r in results:
        for note in r.get("notes", []):
            if note not in shared:
                print(f"note ({r['family']}): {note}")
    print(f"feature space: {results[0].get('features', {}).get('name', '–')}")
    print(f"written: {report}")
    return 0
