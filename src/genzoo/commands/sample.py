HELP = "draw samples from a trained run"
DESCRIPTION = """Draw samples from a trained run (its EMA weights when it kept them).

Images: FILE.png (a grid) and FILE.npz (x: uint8 N,H,W,C). The options after --no-ema are the
families' own: each family declares the keywords its sampler takes, and the help of each
option names the families that take it; an option the run's family does not take is refused."""

OWN = ("run_dir", "n", "out", "seed", "device", "no_ema")     # the command's own settings
_METAVAR = {int: "N", float: "X", str: "TEXT", bool: "yes|no"}


def declared() -> dict:
    """Every registered family's sample options: name -> [(family, SampleOption)]."""
    from genzoo import registry
    options: dict = {}
    for family, entry in registry.families().items():
        for o in entry.cls.sample_options:
            options.setdefault(o.name, []).append((family, o))
    return options


def _help(declarations) -> str:
    """'fam1, fam2: their help; fam3: its help', grouping families that say the same."""
    by_text: dict[str, list[str]] = {}
    for family, o in declarations:
        text = o.help + (f" [default {o.default}]" if o.default is not None else "")
        by_text.setdefault(text, []).append(family)
    return "; ".join(f"{', '.join(fams)}: {text}" if text else ", ".join(fams)
                     for text, fams in by_text.items()).replace("%", "%%")


def _dest(name: str) -> str:
    return "option:" + name


def add_arguments(p):
    p.add_argument("run_dir")
    p.add_argument("-n", type=int, default=64, help="how many samples")
    p.add_argument("--out", help="output stem (default RUN/samples/sample)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-ema", action="store_true", help="use the raw, not the averaged, weights")
    for name, declarations in declared().items():
        if name in OWN:
            raise ValueError(f"{declarations[0][0]} declares the sample option {name!r}, a "
                             "setting of `genzoo sample` itself; rename it")
        o = declarations[0][1]
        kinds = {(d.type, d.choices) for _, d in declarations}
        metavar = ("{" + ",".join(map(str, o.choices)) + "}" if o.choices else _METAVAR[o.type]) \
            if len(kinds) == 1 else "VALUE"
        if o.kind == "label":
            metavar = "CLASS"
        p.add_argument(o.flag, dest=_dest(name), metavar=metavar, help=_help(declarations))


def run(args) -> int:
    import torch

    from pathlib import Path

    from genzoo.errors import GenzooError
    from genzoo.training.run import check_writable, load_model
    from genzoo.training.trainer import resolve_device
    from genzoo.viz.samples import save_samples

    if args.n < 1:
        raise GenzooError(f"-n {args.n}: must be at least 1")
    given = {k.split(":", 1)[1]: v for k, v in vars(args).items()
             if k.startswith("option:") and v is not None}
    stem = Path(args.out or f"{args.run_dir}/samples/sample")
    device = resolve_device(args.device)
    model, desc = load_model(args.run_dir, device, ema=not args.no_ema)
    check_writable(stem.parent)         # before sampling, which may take a while
    mine = {o.name: o for o in type(model).sample_options}
    conditions = {}
    for name, text in given.items():
        if name not in mine:
            takes = ", ".join(o.flag for o in mine.values()) or "no sample options"
            raise GenzooError(f"{model.family_name} does not take --{name.replace('_', '-')} "
                              f"(it takes {takes})")
        conditions[name] = mine[name].parse(text, model.data)
    g = torch.Generator(device).manual_seed(args.seed)
    with torch.no_grad():
        x = model.sample(args.n, generator=g, **conditions)
    try:
        files = save_samples(x, model.output_info, stem)
    except OSError as e:
        raise GenzooError(f"{stem}: cannot write the samples ({e.strerror or e})") from None
    for f in files:
        print(f)
    return 0
