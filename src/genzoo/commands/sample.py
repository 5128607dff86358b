HELP = "draw samples from a trained run"
DESCRIPTION = """Draw samples from a trained run (its EMA weights when it kept them).

Images: FILE.png (a grid) and FILE.npz (x: uint8 N,H,W,C). Family options (a family that does
not take one says so): --label, --prompt, --max-tokens, --temperature, --top-k, --top-p,
--sampler, --steps, --eta, --guidance."""

# flag -> keyword of Family.sample
CONDITIONS = {"label": str, "prompt": str, "max_tokens": int, "temperature": float,
              "top_k": int, "top_p": float, "sampler": str, "steps": int, "eta": float,
              "guidance": float}


def _sampler_help() -> str | None:
    """--sampler's help: the registered diffusion samplers (None if there are none)."""
    try:
        from genzoo.models.diffusion.samplers import SAMPLERS
    except ImportError:
        return None
    return "diffusion sampler: " + "; ".join(f"{name} = {line} [{steps} steps by default]"
                                              for name, (_, steps, line) in SAMPLERS.items())


def add_arguments(p):
    p.add_argument("run_dir")
    p.add_argument("-n", type=int, default=64, help="how many samples")
    p.add_argument("--out", help="output stem (default RUN/samples/sample)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-ema", action="store_true", help="use the raw, not the averaged, weights")
    for name, tp in CONDITIONS.items():
        p.add_argument("--" + name.replace("_", "-"), type=tp, dest=name,
                       help=_sampler_help() if name == "sampler" else None)


def label_index(label: str, class_names: list[str] | None, num_classes: int) -> int:
    from genzoo.errors import GenzooError
    if class_names and label in class_names:
        return class_names.index(label)
    if label.lstrip("-").isdigit() and 0 <= int(label) < max(num_classes, 1):
        return int(label)
    raise GenzooError(f"--label {label!r}: not a class of this run "
                      f"({', '.join(class_names or map(str, range(num_classes))) or 'it has none'})")


def run(args) -> int:
    import inspect

    import torch

    from genzoo.errors import GenzooError
    from genzoo.training.run import load_model
    from genzoo.training.trainer import resolve_device
    from genzoo.viz.samples import save_samples

    if args.n < 1:
        raise GenzooError(f"-n {args.n}: must be at least 1")
    device = resolve_device(args.device)
    model, desc = load_model(args.run_dir, device, ema=not args.no_ema)
    conditions = {k: getattr(args, k) for k in CONDITIONS if getattr(args, k) is not None}
    if "label" in conditions:
        conditions["label"] = label_index(conditions["label"], model.data.class_names,
                                          model.data.num_classes)
    accepted = inspect.signature(model.sample).parameters
    for k in conditions:
        if k not in accepted:
            raise GenzooError(f"{model.family_name} does not take --{k.replace('_', '-')}")
    g = torch.Generator(device).manual_seed(args.seed)
    with torch.no_grad():
        x = model.sample(args.n, generator=g, **conditions)
    stem = args.out or f"{args.run_dir}/samples/sample"
    for f in save_samples(x, model.data, stem):
        print(f)
    return 0
