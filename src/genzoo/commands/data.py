HELP = "list the datasets genzoo knows, fetch a named one, or inspect a data spec"
DESCRIPTION = """List the builtin and downloadable datasets, download one, or inspect a data spec.

examples:
  genzoo data list
  genzoo data fetch fashion-mnist
  genzoo data show digits --image-size 32"""


def add_arguments(p):
    p.add_argument("action", choices=["list", "fetch", "show"])
    p.add_argument("name", nargs="?", help="dataset name (fetch) or data spec (show)")
    p.add_argument("--image-size", type=int)


def run(args) -> int:
    from genzoo import data as D
    from genzoo.data import sources
    from genzoo.errors import GenzooError
    if args.action == "list":
        downloadable = {s["name"]: s for s in sources.list_sources()}
        for name in D.builtin_names():
            s = downloadable.get(name)
            where = ("downloadable, " + ("cached" if s["cached"] else "not yet downloaded")
                     if s else "offline builtin")
            print(f"  {name:<16} {where}" + (f"  {s['description']}" if s and s.get("description") else ""))
        return 0
    if not args.name:
        raise GenzooError(f"data {args.action}: name a dataset")
    if args.action == "fetch":
        for path in sources.fetch(args.name):
            print(path)
        return 0
    ds = D.load(args.name, D.DataOptions(image_size=args.image_size))
    print(f"{args.name}: {len(ds)} items of shape {tuple(ds.shape)} ({ds.modality}, {ds.x.dtype})")
    if ds.class_names:
        print(f"classes ({ds.num_classes}): {', '.join(ds.class_names)}")
    for note in ds.meta.get("notes", []):
        print(f"note: {note}")
    return 0
