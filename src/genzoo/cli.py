"""The ``genzoo`` command.

Each sub-command lives in ``genzoo.commands.<name>`` with ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int``. A :class:`GenzooError` becomes one line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from genzoo import __version__
from genzoo.errors import GenzooError

COMMANDS = ["list", "train", "pipeline", "sample", "info", "data", "eval", "compare", "report",
            "serve"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genzoo", description="Train, sample, measure and compare "
                                "generative models of every major family.")
    p.add_argument("--version", action="version", version=f"genzoo {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"genzoo.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"genzoo.commands.{name}":
                continue        # a command not built yet
            raise
        sp = sub.add_parser(name, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(sp)
        sp.set_defaults(_run=mod.run)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    args.argv = argv            # the command as given (train --devices relaunches it)
    try:
        code = args._run(args) or 0
        sys.stdout.flush()          # a reader that has gone shows here, not at exit
        return code
    except GenzooError as e:
        print(f"genzoo: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genzoo: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # whoever read the output has gone (`genzoo info RUN | head -1`): stop quietly, as a
        # program that SIGPIPE ends would, and let nothing flush into the closed pipe on exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
