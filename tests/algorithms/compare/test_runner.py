"""``branchgym compare`` end to end at a tiny budget: killed with SIGKILL mid-run, resumed without
redoing finished jobs; equal budgets checked from every run's metrics; the report's parts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from branchgym.algorithms.compare.budget import cumulative
from branchgym.algorithms.compare.config import CompareConfig
from branchgym.algorithms.compare.runner import Job, plan, run_compare
from branchgym.algorithms.metrics import read_metrics

pytestmark = pytest.mark.slow

ARGS = ["compare", "--tiny", "--algos", "grpo,arpo", "--seeds", "2", "--budget", "1500"]


def _finished(out: Path) -> dict[str, tuple[int, str]]:
    """job name -> (mtime_ns, content) of every result.json present."""
    found = {}
    for job in plan(CompareConfig.tiny(algos=("grpo", "arpo"), seeds=2, out=str(out))):
        p = job.dir(out) / "result.json"
        if p.is_file():
            found[job.name] = (p.stat().st_mtime_ns, p.read_text())
    return found


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("compare")
    cmd = [sys.executable, "-c", "import sys; from branchgym.cli import main; sys.exit(main(sys.argv[1:]))",
           *ARGS, "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first_rl = Job(0, "grpo").dir(out) / "result.json"
    deadline = time.monotonic() + 240
    try:
        while not first_rl.exists():
            assert proc.poll() is None, "the comparison ended before its first RL job finished"
            assert time.monotonic() < deadline, "no RL result within 240 s"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    before = _finished(out)
    cfg = CompareConfig.tiny(algos=("grpo", "arpo"), seeds=2, budget=1500.0, out=str(out))
    report = run_compare(cfg, log=lambda m: None)
    return {"out": out, "before": before, "after": _finished(out), "report": report, "cfg": cfg}


def test_killed_comparison_resumes_without_redoing_finished_jobs(compared: dict[str, Any]) -> None:
    before, after = compared["before"], compared["after"]
    assert {"seed0/sft", "seed0/grpo"} <= set(before)
    assert len(before) < 6, "the kill came after the last job; nothing was left to resume"
    assert set(after) == {j.name for j in plan(compared["cfg"])}
    for name, stamp in before.items():
        assert after[name] == stamp, f"{name} was redone"
    sessions = json.loads((compared["out"] / "sessions.json").read_text())
    assert len(sessions) == 2 and sessions[1]["jobs"] == 6 - len(before)


def test_every_run_stops_within_one_step_of_the_same_budget(compared: dict[str, Any]) -> None:
    out, cfg = compared["out"], compared["cfg"]
    for job in plan(cfg):
        if job.algo == "sft":
            continue
        rows = read_metrics(job.dir(out) / "run")
        spent = cumulative(rows, "tokens")
        assert len(rows) >= 2, f"{job.name}: the budget should take several steps"
        assert [r["step"] for r in rows] == list(range(1, len(rows) + 1))
        assert spent[-2] < cfg.budget <= spent[-1], f"{job.name}: {spent}"
        result = json.loads((job.dir(out) / "result.json").read_text())
        assert result["spent"] == spent[-1] and result["steps"] == len(rows)
        assert [c["point"] for c in result["curve"]] == [750.0, 1500.0]


def test_report_has_curves_intervals_and_the_differences_table(compared: dict[str, Any]) -> None:
    out = compared["out"]
    text = compared["report"].read_text()
    for png in ("heldout_pass1", "entropy", "train_reward", "pass_at_k_and_cost"):
        assert f"![plots/{png}.png](plots/{png}.png)" in text
        assert (out / "plots" / f"{png}.png").stat().st_size > 5000
    assert "**Equal budget: 1500 generated tokens per run**" in text
    assert "## Differences from `grpo`" in text and "| arpo | pass@1 |" in text and "| arpo | pass@4 |" in text
    assert "| grpo | " in text and "| sft | " in text and " [" in text  # means with intervals
    res = json.loads((out / "results.json").read_text())
    assert res["complete"] and res["k_values"] == [1, 2, 4]
    for algo in ("sft", "grpo", "arpo"):
        for k in ("1", "2", "4"):
            p = res["summary"][algo]["pass_at_k"][k]
            assert p["ci"][0] <= p["mean"] <= p["ci"][1] and len(p["per_seed"]) == 2
    d = res["differences"]["arpo"]["pass@1"]
    assert d["exceeds"] in (True, False) and len(d["per_seed"]) == 2 and d["ci"][0] <= d["diff"] <= d["ci"][1]
    assert res["wall_seconds"] > 0
    assert set(res["curves"]["grpo"]) == {"0", "1"} and len(res["curves"]["grpo"]["0"]) == 2


def test_a_changed_setting_cannot_resume_into_the_same_directory(compared: dict[str, Any]) -> None:
    from branchgym.errors import ConfigError

    with pytest.raises(ConfigError, match="budget"):
        run_compare(compared["cfg"].replace(budget=999.0), log=lambda m: None)
