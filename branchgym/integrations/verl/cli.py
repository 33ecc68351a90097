"""``branchgym verl-data``: write the parquet verl trains on (registered by ``branchgym.cli``).

Imports without verl; see :mod:`branchgym.integrations.verl.data` for the columns.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["register", "cmd_verl_data"]


def register(subparsers: Any) -> None:
    """Add ``verl-data`` to the ``branchgym`` parser."""
    p = subparsers.add_parser(
        "verl-data",
        help="write a verl training parquet (one row per task) for the branchgym agent loops",
        description="One row per task of ENV_ID's split: the env's opening chat as 'prompt', "
        "agent_name, and extra_info with env_id, task_id and env_kwargs, which the branchgym "
        "agent loops read. See docs/integrations/verl.md.",
    )
    p.add_argument("env_id", metavar="ENV_ID",
                   help="env id (e.g. CodeExec-Offline-v0) or module:factory")
    p.add_argument("--split", default="train", help="the env's split (default train)")
    p.add_argument("--out", required=True, help="output .parquet path")
    p.add_argument("--agent", default="branchgym", choices=["branchgym", "branchgym_tree"],
                   help="agent loop of every row: branchgym (flat) or branchgym_tree "
                   "(ARPO/AEPO trees)")
    p.add_argument("--env-kwargs", default="{}", metavar="JSON",
                   help="keyword arguments of gym.make as a JSON object, e.g. '{\"max_turns\": 6}'")
    p.add_argument("--limit", type=int, default=None, help="only the first N tasks of the split")
    p.set_defaults(func=cmd_verl_data)


def cmd_verl_data(args: argparse.Namespace) -> int:
    from branchgym.errors import ConfigError
    from branchgym.integrations.verl.data import build_rows, write_parquet

    try:
        kwargs = json.loads(args.env_kwargs)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"--env-kwargs {args.env_kwargs!r} is not JSON ({exc}); give an object."
        ) from exc
    if not isinstance(kwargs, dict):
        raise ConfigError(f"--env-kwargs must be a JSON object, got {args.env_kwargs!r}")
    rows = build_rows(
        args.env_id, split=args.split, agent=args.agent, env_kwargs=kwargs, limit=args.limit
    )
    path = write_parquet(rows, args.out)
    print(f"wrote {len(rows)} rows ({args.env_id}, split {args.split}, agent {args.agent}) "
          f"to {path}")
    return 0
