HELP = "train a family on a dataset into a run folder"
DESCRIPTION = """Train a family on a dataset into a run folder.

examples:
  genzoo train vae --data digits --steps 2000
  genzoo train vae --data fashion.npz --preset strong --set beta=200 --set train.precision=bf16
  genzoo train --resume --out runs/vae-1 --steps 5000     (continue, or extend, a run)
  genzoo train gpt --data corpus.txt --devices 4         (4 processes on this machine: DDP)
  torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \
      -m genzoo train gpt --data corpus.txt --out runs/gpt-1   (on each of 2 machines)
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
    p.add_argument("--devices", type=int, metavar="N",
                   help="train in N processes on this machine (one per GPU, or N CPU processes), "
                        "launched by torch's elastic launcher as torchrun would; the batch size "
                        "stays the global batch")
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
    if args.devices is not None and args.devices != 1:
        return _launch(args, description, out)
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
    from genzoo.training import distributed
    if distributed.is_main():
        print(f"done: {run.path}  (samples in {run.path / 'samples'}; "
              f"`genzoo sample {run.path} -n 64 --out FILE` for more)")
    distributed.quit()
    return 0


def _launch(args, description, out) -> int:
    """--devices N: the same command in N processes (torch's elastic launcher), checked here
    first so that a bad batch size or device is one line, not N."""
    import torch

    from genzoo.errors import GenzooError
    from genzoo.training import distributed
    from genzoo.training.trainer import resolve_device
    n = args.devices
    if n < 1:
        raise GenzooError(f"--devices {n}: must be at least 1")
    if distributed.launched():
        raise GenzooError("--devices: this process was started by torchrun already; "
                          "leave --devices out (torchrun's --nproc-per-node says how many)")
    cfg = description.train
    if not hasattr(cfg, "batch_size"):
        raise GenzooError(f"{description.family}: trained by an evolution strategy, it runs in "
                          f"one process (use --set train.workers=N), not on --devices")
    device = resolve_device(cfg.device)
    if device.type == "cuda" and n > torch.cuda.device_count():
        raise GenzooError(f"--devices {n}: this machine has {torch.cuda.device_count()} GPU(s)")
    distributed.check_batch(n, cfg.batch_size, cfg.accumulate)
    argv = _without_devices(args.argv)
    if not args.out:
        argv += ["--out", str(out)]     # one folder for every rank, named here
    return distributed.launch(n, argv)


def _without_devices(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--devices":
            skip = True
        elif not a.startswith("--devices="):
            out.append(a)
    return out
