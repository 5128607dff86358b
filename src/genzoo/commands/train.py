HELP = "train a family on a dataset into a run folder"
DESCRIPTION = """Train a family on a dataset into a run folder.

examples:
  genzoo train vae --data digits --steps 2000
  genzoo train vae --data fashion.npz --preset strong --set beta=200 --set train.precision=bf16
  genzoo train --resume --out runs/vae-1 --steps 5000     (continue, or extend, a run)
settings: --set NAME=V sets the family's NAME; train.NAME and data.NAME reach the loop and data."""


def add_arguments(p):
    p.add_argument("family", nargs="?", help="family name (see `genzoo list`)")
    p.add_argument("--data", help="builtin name, named set, or path")
    p.add_argument("--config", help="YAML file with model:, train:, data: sections")
    p.add_argument("--preset", help="a named variant of the recipe")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--steps", type=int)
    g.add_argument("--epochs", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--image-size", type=int, help="square image side the data is adapted to")
    p.add_argument("--out", help="run folder (default runs/FAMILY-TIME)")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--seed", type=int)
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    from genzoo.errors import GenzooError
    from genzoo.training import launch
    from genzoo.viz.samples import save_samples
    if args.resume:
        description = launch.resume_description(args.out, args.steps, changes={
            "epochs": args.epochs, "device": args.device, "batch_size": args.batch_size,
            "seed": args.seed, "data": args.data, "config": args.config, "preset": args.preset,
            "set": args.overrides, "image_size": args.image_size})
        if args.family and args.family != description.family:
            raise GenzooError(f"{args.out}: holds a {description.family} run, not {args.family}")
    else:
        if not args.family:
            raise GenzooError("train: name a family (see `genzoo list`)")
        description = launch.resolve(
            args.family, data=args.data, config_file=args.config, preset=args.preset,
            overrides=args.overrides,
            train={"steps": args.steps, "epochs": args.epochs, "batch_size": args.batch_size,
                   "device": args.device, "seed": args.seed},
            data_options={"image_size": args.image_size})
    out = args.out or launch.default_out(description.family)
    try:
        run = launch.train(description, out, resume=args.resume, progress=not args.no_progress,
                           writer=save_samples)
    except KeyboardInterrupt:
        import sys
        from pathlib import Path
        if not (Path(out) / "config.yaml").is_file():
            raise
        print(f"genzoo: interrupted; the run is saved. Resume it with: "
              f"genzoo train --resume --out {out}", file=sys.stderr)
        return 130
    print(f"done: {run.path}  (samples in {run.path / 'samples'}; "
          f"`genzoo sample {run.path} -n 64 --out FILE` for more)")
    return 0
