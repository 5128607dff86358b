HELP = "list the datasets genzoo knows, fetch a named one, inspect or pack a data spec"
DESCRIPTION = """List the builtin and downloadable datasets, download one, inspect a data spec, or
pack it: decode it once into memory-mapped arrays (uint8 images, labels, a token stream) plus a
JSON description, in the folder OUT, which then trains at the speed of memory (--data OUT).

examples:
  genzoo data list
  genzoo data fetch fashion-mnist
  genzoo data show digits --image-size 32
  genzoo data pack photos/ photos-64 --image-size 64
  genzoo data pack corpus.txt corpus-pack --set data.tokenizer=bpe"""


def add_arguments(p):
    p.add_argument("action", choices=["list", "fetch", "show", "pack"])
    p.add_argument("name", nargs="?", help="dataset name (fetch) or data spec (show, pack)")
    p.add_argument("out", nargs="?", help="pack: the new folder to write")
    p.add_argument("--image-size", type=int)
    p.add_argument("--set", action="append", default=[], metavar="data.KEY=VALUE",
                   dest="overrides", help="a data option (data.channels=3, data.tokenizer=bpe...)")


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
    options = _options(args)
    if args.action == "pack":
        from genzoo.data.packed import pack
        if not args.out:
            raise GenzooError("data pack: name the folder to write (genzoo data pack SPEC OUT)")
        out = pack(args.name, args.out, options)
        print(f"packed {args.name} into {out}; train on it with --data {out}")
        return 0
    ds = D.load(args.name, options)
    print(f"{args.name}: {len(ds)} items of shape {tuple(ds.shape)} ({ds.modality}, {ds.x.dtype})")
    if ds.class_names:
        print(f"classes ({ds.num_classes}): {', '.join(ds.class_names)}")
    for note in ds.meta.get("notes", []):
        print(f"note: {note}")
    return 0


def _options(args):
    from genzoo import config as C
    from genzoo import data as D
    sections = {"data": {"image_size": args.image_size} if args.image_size else {}}
    C.apply_overrides(sections, [o if o.startswith("data.") else f"data.{o}" for o in args.overrides],
                      default_section="data", types={"data": D.DataOptions})
    return C.from_dict(D.DataOptions, sections["data"], where="data options")
