"""The `branchgym` CLI: list, play (stdin), eval (table + JSONL)."""

from __future__ import annotations

import json
import subprocess
import sys

from branchgym.cli import SUBCOMMAND_MODULES, main


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "branchgym.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_list(capsys) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for env_id in (
        "WebSearch-Offline-v0",
        "Browse-Offline-v0",
        "CodeExec-Offline-v0",
        "DeepResearch-Offline-v0",
    ):
        assert env_id in out
    assert "search,browse,python" in out and "test=" in out and "smoke=" in out


def test_play_through_stdin() -> None:
    proc = run(
        "play",
        "WebSearch-Offline-v0",
        "--split",
        "smoke",
        stdin="hello\n<search>a query</search>\n<answer>\\boxed{nobody}</answer>\n",
    )
    assert proc.returncode == 0, proc.stderr
    assert "Invalid action" in proc.stdout and "<result>" in proc.stdout
    assert "episode over: reward=0.000" in proc.stdout


def test_eval_table_and_transcripts(tmp_path) -> None:
    out = tmp_path / "t.jsonl"
    proc = run(
        "eval",
        "WebSearch-Offline-v0",
        "--agent",
        "oracle",
        "--episodes",
        "3",
        "--split",
        "smoke",
        "--n-samples",
        "2",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    assert "pass@1" in proc.stdout and "pass@2" in proc.stdout and "f1" in proc.stdout
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 6 and all(r["reward"] == 1.0 for r in lines)
    assert lines[0]["messages"][0]["role"] == "system"


def test_unknown_agent_and_env_fail_clearly() -> None:
    proc = run("eval", "WebSearch-Offline-v0", "--agent", "gpt")
    assert proc.returncode != 0 and "invalid choice" in proc.stderr
    proc = run("eval", "WebSerch-Offline-v0", "--episodes", "1")
    assert proc.returncode == 2 and "Did you mean: `WebSearch-Offline`" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run(
        "eval", "WebSearch-Offline-v0", "--split", "smoke", "--env-kwargs", '{"protocol": "hermez"}'
    )
    assert proc.returncode == 2 and "Did you mean 'hermes'" in proc.stderr


def test_missing_subcommand_modules_are_skipped_only_if_absent() -> None:
    assert SUBCOMMAND_MODULES[0] == "branchgym.envs.cli"
    assert main([]) == 2


def test_bad_env_kwargs_json() -> None:
    proc = run("eval", "WebSearch-Offline-v0", "--env-kwargs", "{max_turns: 3}")
    assert proc.returncode == 2 and "not valid JSON" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_train_print_config_works_for_every_preset(capsys) -> None:
    import yaml

    from branchgym.algorithms.train_config import PRESETS

    for algo in PRESETS:
        assert main(["train", "--algo", algo, "--print-config"]) == 0
        printed = yaml.safe_load(capsys.readouterr().out)
        assert printed["algo"] == algo and printed["advantage"] == PRESETS[algo].advantage


def test_quickstart_options_are_checked_before_any_work(tmp_path, capsys) -> None:
    out = tmp_path / "qs"
    for args, word in (
        (["--set", "rl_lr=inf"], "QuickstartConfig.rl_lr="),
        (["--set", "hidden=100"], "QuickstartConfig.hidden=100"),
        (["--set", "rl_step=3"], "unknown quickstart option"),
        (["--minutes-budget", "-1"], "QuickstartConfig.minutes_budget=-1"),
        (["--set", "task=chains"], "QuickstartConfig.task='chains'"),
        (["--set", "eval_every=0"], "QuickstartConfig.eval_every=0"),
    ):
        assert main(["quickstart", "--out", str(out), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and word in err, err
    assert not out.exists()  # nothing was built or written
