"""``import verl`` in a fresh interpreter registers branchgym's agent loops (and the estimators
and losses that ``branchgym.integrations.verl.algorithms`` declares) in verl's own registries.

verl's plugin loader logs a failed plugin import at debug level and goes on, so only a lookup in
the registries proves that the plugin loaded. The child's code imports verl only.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tiny_server import require_verl

CHILD = r"""
import json, sys
import verl  # loads the verl.plugins entry points
import hydra
from verl.experimental.agent_loop.agent_loop import _agent_loop_registry
from verl.trainer.ppo import core_algos

names = json.loads(sys.argv[1])
out = {"loops": {}, "adv_estimators": {}, "policy_losses": {}}
for name in names["loops"]:
    entry = _agent_loop_registry.get(name)
    out["loops"][name] = None if entry is None else hydra.utils.get_class(entry["_target_"]).__module__
for name in names["adv_estimators"]:
    out["adv_estimators"][name] = core_algos.get_adv_estimator_fn(name).__module__
for name in names["policy_losses"]:
    out["policy_losses"][name] = core_algos.get_policy_loss_fn(name).__module__
print(json.dumps(out))
"""


def _declared_names() -> dict[str, list[str]]:
    import importlib

    from branchgym.integrations.verl.agent_loops import AGENT_LOOP_NAMES

    algorithms = importlib.import_module("branchgym.integrations.verl.algorithms")
    declared = getattr(algorithms, "VERL_NAMES", {})
    return {"loops": list(AGENT_LOOP_NAMES), "adv_estimators": list(declared.get("adv_estimators", ())),
            "policy_losses": list(declared.get("policy_losses", ()))}


@pytest.mark.slow
def test_import_verl_registers_branchgym() -> None:
    require_verl()
    names = _declared_names()
    assert set(names["loops"]) == {"branchgym", "branchgym_tree"}
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(names)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["loops"] == {n: "branchgym.integrations.verl.agent_loops" for n in names["loops"]}
    for kind in ("adv_estimators", "policy_losses"):
        for name, module in got[kind].items():
            assert module.startswith("branchgym."), f"{kind} {name} resolves to {module}"
