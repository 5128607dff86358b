HELP = "list every family with its modality and place in the taxonomy"


def add_arguments(p):
    pass


def run(args) -> int:
    from genzoo import registry
    entries = registry.families()
    w = max(len(n) for n in entries)
    m = max(len(e.modality) for e in entries.values())
    for group, title in registry.TAXONOMY.items():
        rows = [e for e in entries.values() if e.taxonomy == group]
        if not rows:
            continue
        print(f"{title}:")
        for e in rows:
            print(f"  {e.name:<{w}}  {e.modality:<{m}}  {e.summary}")
    return 0
