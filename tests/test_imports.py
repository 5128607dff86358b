"""genzoo's packages import downward only.

    cli, commands, serve -> evaluation, viz -> training -> models -> nn -> data, config, registry, errors

A package may import itself, its peers in the same layer and anything lower, never a layer
above. Every ``import`` and ``from ... import`` counts, at the top of a module or inside a
function, and so do ``importlib.import_module("genzoo.X...")`` calls with a literal (or
f-string) module name. Source is parsed with ``ast``; nothing is imported.
"""
from __future__ import annotations

import ast
from pathlib import Path

import genzoo

SRC = Path(genzoo.__file__).parent

# Lowest first. "" is the root package (genzoo/__init__.py: the version).
LAYERS = [
    {"", "errors", "config", "registry", "data"},
    {"nn"},
    {"models"},
    {"training"},
    {"evaluation", "viz"},
    {"commands", "cli", "__main__", "serve"},     # serve: the explorer, a front end like cli
]
RANK = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}

# (importing module, imported package) pairs that break the rule on purpose.
ALLOWED = {
    # Plugin discovery: families register themselves when their module is imported, and the
    # registry finds them by importing everything under genzoo.models. Permanent.
    ("genzoo.registry", "models"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_of(module: str) -> str:
    """genzoo.models.gan.dcgan -> models; genzoo.cli -> cli; genzoo -> ''."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _is_module(name: str) -> bool:
    return (SRC / name).is_dir() or (SRC / f"{name}.py").is_file()


def imported_modules(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module name) of every genzoo module that ``source`` imports."""
    here = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:                          # relative: from . import x, from ..a import b
                anchor = here[:len(here) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from genzoo import data` imports the package genzoo.data; `__version__` the root
            found += [(node.lineno, f"{base}.{a.name}" if base == "genzoo" and _is_module(a.name)
                       else base) for a in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) \
                == "import_module" and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.append((node.lineno, arg.value))
            elif isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
                found.append((node.lineno, str(arg.values[0].value).rstrip(".")))
    return sorted({(line, m) for line, m in found if m == "genzoo" or m.startswith("genzoo.")})


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    mine = package_of(module)
    out = []
    for line, target in imported_modules(source, module, is_package):
        theirs = package_of(target)
        if theirs not in RANK:
            out.append(f"{module}:{line} imports {target}: place genzoo.{theirs} in LAYERS")
        elif RANK[theirs] > RANK[mine] and (module, theirs) not in ALLOWED:
            out.append(f"{module}:{line} imports {target} (a higher layer)")
    return out


def test_every_package_has_a_layer():
    modules = {module_name(p) for p in SRC.rglob("*.py")}
    assert {package_of(m) for m in modules} <= set(RANK), set(map(package_of, modules)) - set(RANK)


def test_packages_import_downward_only():
    found = []
    for path in sorted(SRC.rglob("*.py")):
        found += violations(path.read_text(encoding="utf-8"), module_name(path),
                            path.name == "__init__.py")
    assert found == [], "\n".join(found)


def test_allowances_are_still_needed():
    """An allowance whose import has gone must go too."""
    used = set()
    for path in sorted(SRC.rglob("*.py")):
        module = module_name(path)
        for _, target in imported_modules(path.read_text(encoding="utf-8"), module,
                                          path.name == "__init__.py"):
            used.add((module, package_of(target)))
    assert ALLOWED <= used, ALLOWED - used


def test_the_checker_sees_every_form_of_import():
    src = '''
import genzoo.training.run
from genzoo import viz
from genzoo.errors import GenzooError
def f():
    from ..evaluation import run_eval
    import importlib
    importlib.import_module(f"genzoo.commands.{name}")
    importlib.import_module("genzoo.nn.conv")
'''
    found = violations(src, "genzoo.models.thing")
    assert [v.split(" imports ")[1].split(" ")[0] for v in found] == \
        ["genzoo.training.run", "genzoo.viz", "genzoo.evaluation", "genzoo.commands"]
    assert violations("from . import base\nfrom .. import nn", "genzoo.models.gan.dcgan") == []
    assert "place genzoo.newpkg in LAYERS" in violations("import genzoo.newpkg.x", "genzoo.nn.a")[0]
