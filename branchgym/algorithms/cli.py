"""``branchgym train`` and ``branchgym quickstart`` (subcommands registered by ``branchgym.cli``)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register", "cmd_train", "cmd_quickstart"]


def register(subparsers: Any) -> None:
    """Add ``train`` and ``quickstart`` to the ``branchgym`` parser."""
    from branchgym.algorithms.quickstart import QUICKSTART_TASKS
    from branchgym.algorithms.train_config import PRESETS

    width = max(map(len, PRESETS))
    p = subparsers.add_parser(
        "train", help="RL-train a policy on an env (GRPO, DAPO, ARPO, AEPO, EMPG, ...)",
        description="Train with an algorithm preset, optionally overridden by a YAML file and --set key=value. "
                    "Every value is checked (type and range) before any model loads.",
        epilog="presets:\n" + "\n".join(f"  {n:<{width}}  {p.summary}" for n, p in PRESETS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--algo", default=None, choices=list(PRESETS), metavar="ALGO",
                   help="algorithm preset (listed below); optional when --config names one with 'algo:'")
    p.add_argument("--env", default=None, help="env id (e.g. WebSearch-Offline-v0) or module:factory")
    p.add_argument("--model", default=None, help="directory of a Hugging Face causal LM")
    p.add_argument("--config", default=None, help="YAML file of TrainConfig fields")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a field (repeatable), e.g. --set lr=1e-5 --set branching.n=8")
    p.add_argument("--out", default=None, help="run directory (default runs/train)")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
    p.set_defaults(func=cmd_train)

    q = subparsers.add_parser(
        "quickstart", help="the README's main job: tiny model → SFT → GRPO and AEPO → report (CPU, ≤15 min)",
    )
    q.add_argument("--seeds", type=int, default=1, help="independent seeds (the learning claim uses 3)")
    q.add_argument("--minutes-budget", type=float, default=15.0, help="wall-clock budget for the whole run")
    q.add_argument("--out", default="runs/quickstart", help="output directory")
    q.add_argument("--quick", action="store_true", help="a minute-sized run (CI smoke)")
    q.add_argument("--task", choices=list(QUICKSTART_TASKS), default=None,
                   help="lookup (one search call, the default) or chain (two calls: the second key comes from "
                        "the first result)")
    q.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a QuickstartConfig field, e.g. --set rl_steps=30")
    q.set_defaults(func=cmd_quickstart)


def cmd_train(args: argparse.Namespace) -> int:
    from branchgym.algorithms.train_config import load_train_config, parse_sets

    overrides = parse_sets(args.set)
    for name in ("env", "model", "out", "steps", "seed"):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    cfg = load_train_config(args.algo, args.config, overrides)  # validated here, before any model loads
    if args.print_config:
        import yaml

        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
        return 0
    from branchgym.algorithms.trainer import train

    last = train(cfg)
    keys = ("rollout/reward_mean", "rollout/generated_tokens", "rollout/tool_calls", "loss/policy")
    print(f"done: {cfg.steps} steps in {cfg.out}; last step: " +
          ", ".join(f"{k}={last[k]:.4g}" for k in keys if k in last))
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    from branchgym.algorithms.quickstart import QuickstartConfig, run_quickstart
    from branchgym.algorithms.train_config import parse_sets

    base = QuickstartConfig.quick() if args.quick else QuickstartConfig()
    sets = parse_sets(args.set)
    if args.task is not None:
        sets["task"] = args.task
    cfg = base.replace(out=args.out, seeds=args.seeds, minutes_budget=args.minutes_budget, **sets)
    report = run_quickstart(cfg)
    print(f"report: {report}")
    return 0
