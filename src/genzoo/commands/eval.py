HELP = "measure a trained run: FD/FID, KID, precision/recall, likelihood, novelty, sampling time"
DESCRIPTION = """Measure a trained run; prints a table and writes RUN/eval.json.

The reference is the run's own held-out split unless --data names another dataset. Feature
spaces (--features): auto (InceptionV3 if its weights are found, else pixels), inception or
inception:PATH (pytorch-fid's pt_inception-2015-12-05-6726825d.pth; then the distance is FID),
classifier:RUN_DIR (a `genzoo train classifier` run), pixels. Reference features are cached in
$GENZOO_CACHE (default ~/.cache/genzoo), keyed by the data's content hash.

examples:
  genzoo eval runs/vae-1 -n 2000
  genzoo eval runs/dcgan-1 --features classifier:runs/cnn-fashion"""


def add_arguments(p):
    p.add_argument("run_dir")
    p.add_argument("--data", help="reference dataset (default: the run's held-out split)")
    p.add_argument("--features", default="auto", help="auto | inception[:PATH] | classifier:RUN_DIR | pixels")
    p.add_argument("-n", type=int, default=5000, help="how many samples to draw")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--fast", action="store_true", help="sample with the family's declared fast "
                   "options (a diffusion model's few-step solver)")


def run(args) -> int:
    from genzoo.evaluation.run_eval import evaluate_run
    from genzoo.viz.results import text
    result = evaluate_run(args.run_dir, data=args.data, features=args.features, n=args.n,
                          seed=args.seed, device=args.device, fast=args.fast)
    print(text(result))
    print(f"written: {args.run_dir.rstrip('/')}/eval.json")
    return 0
