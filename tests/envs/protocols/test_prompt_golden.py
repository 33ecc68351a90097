"""Regression: the built-in tools' system prompts, stop strings, schemas, refusal and invalid-action
observations stay byte-identical, for every offline env under every protocol.

``data/prompts_golden.json`` was written before tools became registry entries that describe
themselves (docs/tools.md); moving each tool's usage line, call limit and limit wording into its
class must not change a byte of what a model sees. Regenerate only when a change is intended:
``python3 tests/envs/protocols/test_prompt_golden.py --write``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).parent / "data" / "prompts_golden.json"
PROTOCOLS = ("arpo", "search-r1", "hermes")


def _snapshot(env_id: str, protocol: str) -> dict[str, Any]:
    from branchgym.envs.core import ToolEnv
    from branchgym.envs.registration import OFFLINE_ENVS

    kwargs = dict(OFFLINE_ENVS[env_id], split="smoke", sandbox="local", protocol=protocol)
    limits = ToolEnv(**kwargs).max_calls  # the env's defaults
    kwargs["max_calls"] = dict.fromkeys(kwargs.get("tools", ()), 0)  # every call is refused
    env = ToolEnv(**kwargs)
    _, info = env.reset(seed=0)
    refusals = {}
    for name, tool in env.tools.items():
        refusals[name] = env.step(env.protocol.format_call(name, "x", tool.main_arg))[0]
    invalid = env.step("no call here")[0]
    out = {
        "system_prompt": env.system_prompt,
        "stop_strings": list(env.protocol.stop_strings),
        "tools": info["tools"],
        "refusals": refusals,
        "invalid": invalid,
        "how_to": env.protocol.how_to(env.tools),
        "max_calls": limits,
    }
    env.close()
    return out


def _all() -> dict[str, Any]:
    from branchgym.envs.registration import OFFLINE_ENVS

    return {f"{e}|{p}": _snapshot(e, p) for e in sorted(OFFLINE_ENVS) for p in PROTOCOLS}


def test_builtin_prompts_and_observations_are_unchanged() -> None:
    want = json.loads(GOLDEN.read_text())
    got = json.loads(json.dumps(_all()))
    assert sorted(got) == sorted(want)
    for key in want:
        for field in want[key]:
            assert got[key][field] == want[key][field], f"{key}: {field} changed"


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    GOLDEN.write_text(json.dumps(_all(), indent=1, sort_keys=True) + "\n")
