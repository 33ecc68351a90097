"""``branchgym compare`` (registered by ``branchgym.cli``)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register", "cmd_compare"]


def register(subparsers: Any) -> None:
    """Add ``compare`` to the ``branchgym`` parser."""
    from branchgym.algorithms.compare.config import DEFAULT_ALGOS, LOOKUP_ENV

    p = subparsers.add_parser(
        "compare", help="benchmark algorithm presets against each other at an equal budget, over seeds",
        description="Train every preset of --algos from the same SFT warm start (one per seed) until each has "
                    "spent the same budget (generated tokens, trajectories or training seconds), evaluate on a "
                    "held-out split during and after training, and write report.md, results.json and PNGs. "
                    "Re-running with the same --out resumes: finished jobs are never redone. See docs/compare.md.",
    )
    p.add_argument("--env", default=LOOKUP_ENV, help="env id or module:factory taking split= (default: the "
                   "quickstart's lookup task)")
    p.add_argument("--algos", default=",".join(DEFAULT_ALGOS), help="comma-separated presets (default: %(default)s)")
    p.add_argument("--reference", default="grpo", help="algorithm the others are compared with (default: grpo)")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    p.add_argument("--budget-kind", choices=("tokens", "trajectories", "seconds"), default="tokens",
                   help="what is equal across algorithms (default: generated tokens)")
    p.add_argument("--budget", type=float, default=None, help="units of --budget-kind per run (default 60000)")
    p.add_argument("--parallel", type=int, default=1, help="jobs at once, one process each (default 1)")
    p.add_argument("--out", default="runs/compare", help="output directory (re-run it to resume)")
    p.add_argument("--tiny", action="store_true", help="a minute-sized comparison (smoke test)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a CompareConfig field, e.g. --set eval_samples=8 --set lr=1e-4")
    p.add_argument("--report-only", action="store_true", help="rebuild report.md from the finished jobs in --out")
    p.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from branchgym.algorithms.compare.config import CompareConfig
    from branchgym.algorithms.train_config import parse_sets

    if args.report_only:
        from branchgym.algorithms.compare.report import write_report

        print(f"report: {write_report(Path(args.out))}")
        return 0
    fields = dict(env=args.env, algos=args.algos, reference=args.reference, seeds=args.seeds,
                  budget_kind=args.budget_kind, parallel=args.parallel, out=args.out)
    if args.budget is not None:
        fields["budget"] = args.budget
    fields.update(parse_sets(args.set))
    cfg = CompareConfig.tiny(**fields) if args.tiny else CompareConfig().replace(**fields)
    from branchgym.algorithms.compare.runner import run_compare

    print(f"report: {run_compare(cfg)}")
    return 0
