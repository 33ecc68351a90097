"""The ``branchgym`` command. Subcommands come from modules exposing ``register(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from branchgym import __version__
from branchgym.errors import Error

__all__ = ["main", "SUBCOMMAND_MODULES", "build_parser"]

#: Modules that contribute subcommands; one that does not exist yet is skipped.
SUBCOMMAND_MODULES = (
    "branchgym.envs.cli",
    "branchgym.sandbox.cli",
    "branchgym.agents.cli",
    "branchgym.algorithms.cli",
    "branchgym.algorithms.compare.cli",
    "branchgym.integrations.openenv.cli",
    "branchgym.integrations.verl.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every available module's subcommands."""
    parser = argparse.ArgumentParser(
        prog="branchgym",
        description="Gymnasium envs and RL algorithms for tool-using LLM agents.",
    )
    parser.add_argument("--version", action="version", version=f"branchgym {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if (
                exc.name == name
            ):  # that module is not written yet; any other missing import is a bug
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``branchgym`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except Exception as exc:
        # user errors (unknown env id, bad option, missing data) get one clear line, no traceback
        if isinstance(exc, Error) or type(exc).__module__.startswith("gymnasium.error"):
            print(f"branchgym {args.command}: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
