HELP = "train a chain of runs (stages) from a pipeline file; the same command resumes"
DESCRIPTION = """Train every stage of a pipeline file into one folder, one run folder per stage.

Killed at any point, the same command resumes: finished stages are kept and the interrupted one
continues from its last checkpoint. --smoke runs every stage at its family's tiny preset for a
few steps into a scratch folder, to check that the chain is wired.

examples:
  genzoo pipeline vq-vae --smoke                 (a pipeline shipped with genzoo, tiny)
  genzoo pipeline vq-vae --data fashion.npz --out runs/vq-fashion
  genzoo pipeline my-chain.yaml"""


def add_arguments(p):
    p.add_argument("file", help="a pipeline YAML file, or the name of a shipped one")
    p.add_argument("--out", help="the pipeline's folder (default: the file's out:, else runs/NAME)")
    p.add_argument("--data", help="train every stage on this data spec instead of the file's")
    p.add_argument("--smoke", action="store_true", help="every stage tiny, a few steps, scratch folder")
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    from genzoo.training import pipeline
    from genzoo.viz.samples import save_samples
    root = pipeline.run(pipeline.find(args.file), args.out, smoke=args.smoke, data=args.data,
                        progress=not args.no_progress, writer=save_samples)
    print(f"done: {root}")
    return 0
