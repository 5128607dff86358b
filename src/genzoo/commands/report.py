HELP = "write RUN/report.html for one run (evaluating it first if it has no eval.json)"
DESCRIPTION = """Write a static HTML report of one run: its metrics, samples, loss curves and
latent plot, in one file that opens from disk (no server, no internet).

Uses RUN/eval.json when present (from `genzoo eval`); otherwise evaluates the run first with
-n samples and --features (see `genzoo eval -h`)."""


def add_arguments(p):
    p.add_argument("run_dir")
    p.add_argument("--out", help="HTML file (default RUN/report.html)")
    p.add_argument("--features", default="auto")
    p.add_argument("-n", type=int, default=1000, help="samples, when the run must be evaluated")
    p.add_argument("--again", action="store_true", help="evaluate again even if eval.json exists")
    p.add_argument("--device", default="auto")


def run(args) -> int:
    import json
    from pathlib import Path

    from genzoo.evaluation.run_eval import evaluate_run
    from genzoo.training.run import RunDir
    from genzoo.viz.report import write_report
    from genzoo.viz.results import text
    run = RunDir.open(args.run_dir)
    run.spec                                # the whole description read, or one line
    saved = run.path / "eval.json"
    if saved.is_file() and not args.again:
        result = json.loads(saved.read_text())
    else:
        result = evaluate_run(run.path, features=args.features, n=args.n, device=args.device)
    result["run"] = str(run.path)
    print(text(result))
    path = write_report([result], Path(args.out) if args.out else run.path / "report.html",
                        title=f"genzoo report: {result['family']} ({run.path.name})")
    print(f"written: {path}")
    return 0
