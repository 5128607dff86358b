HELP = "show a run's family, config, steps done and last metrics"


def add_arguments(p):
    p.add_argument("run_dir")


def run(args) -> int:
    import yaml

    from genzoo.training.run import RunDir
    run = RunDir.open(args.run_dir)
    d = run.spec.to_dict()                  # read and checked whole, or one line
    ckpt = run.latest_checkpoint()
    print(f"family: {d['family']}")
    print(f"data:   {d['data']['spec']}  {d.get('data_info', {}).get('shape')}")
    steps = int(ckpt.stem.split("_")[1]) if ckpt else 0
    total = d['train'].get('steps', d['train'].get('generations'))
    print(f"steps:  {steps} of {total} (last checkpoint: {ckpt.name if ckpt else 'none'})")
    print("config:")
    print("  " + yaml.safe_dump({k: d[k] for k in ("model", "train")}, sort_keys=False)
          .replace("\n", "\n  ").rstrip())
    last: dict = {}
    for rec in run.metrics():
        last.update(rec)
    if last:
        print("last metrics:")
        for k, v in last.items():
            if k != "time":
                print(f"  {k}: {v:.6g}" if isinstance(v, float) else f"  {k}: {v}")
    return 0
