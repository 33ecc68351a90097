"""``branchgym eval`` on a benchmark with ``--judge`` (a loopback OpenAI-compatible server) and
``--n-samples``: pass@1/pass@k table with EM, F1 and judge columns, JSONL transcripts."""

from __future__ import annotations

import argparse
import json
import re

import pytest

from branchgym.cli import main
from branchgym.envs.benchmarks.eval_cli import add_eval_options, build_policy_agent
from branchgym.envs.web.loopback import LoopbackServer, Reply, Request
from branchgym.errors import ConfigError

from .conftest import fixture_file


def judge_route(req: Request) -> Reply:
    prompt = req.json()["messages"][0]["content"]
    pred = re.search(r"Predicted Answer: (.*)\n", prompt).group(1)
    gold = re.search(r"Golden Answer: (.*)\n", prompt).group(1)
    verdict = "Correct" if pred.strip() and pred.strip() in gold else "Incorrect"
    return Reply(200, {"id": "x", "object": "chat.completion", "model": "m", "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant",
                                                          "content": verdict}}]})


@pytest.mark.parametrize(("agent", "expect"), [("oracle", "1.0000"), ("notool", "0.0000")])
def test_eval_with_judge_prints_passk_table(tmp_path, capsys, agent, expect) -> None:
    out = tmp_path / "t.jsonl"
    kwargs = json.dumps({"source_kwargs": {"data_files": str(fixture_file("bamboogle"))},
                         "tools": ["python"]})
    with LoopbackServer({"/v1/chat/completions": judge_route}) as judge:
        code = main(["eval", "WebSearch-Bamboogle-v0", "--agent", agent, "--n-samples", "2",
                     "--env-kwargs", kwargs, "--judge", judge.url("/v1"),
                     "--judge-model", "tiny-judge", "--out", str(out), "--progress"])
        asked = len(judge.requests)
    assert code == 0
    text = capsys.readouterr().out
    header, p1, p2 = text.strip().splitlines()[-3:]
    assert header.split() == ["EM", "F1", "judge"]
    assert p1.split() == ["pass@1", expect, expect, expect]
    assert p2.split()[0] == "pass@2"
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 6 and {ln["sample"] for ln in lines} == {0, 1}
    assert all("judge" in ln["metrics"] for ln in lines)
    assert asked == 6  # one judge call per episode


def _args(**kw) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_eval_options(p)
    return p.parse_args([x for k, v in kw.items() for x in (f"--{k.replace('_', '-')}", v)])


def test_policy_options_are_validated() -> None:
    assert build_policy_agent(_args(), ("</search>",)) is None
    with pytest.raises(ConfigError, match="--policy needs --model"):
        build_policy_agent(_args(policy="openai"), ())
    with pytest.raises(ConfigError, match="needs --base-url"):
        build_policy_agent(_args(policy="openai", model="m"), ())


def _cached_tiny_model() -> str:
    """The policies' tiny model (random init, local tokenizer), built once per machine."""
    from branchgym.agents import tiny

    return str(tiny.build_cached(vocab_size=2048, layers=2, hidden=64, pretrain_steps=200, seed=0))


@pytest.mark.slow
def test_eval_with_a_real_policy(tmp_path, capsys) -> None:
    pytest.importorskip("torch", reason="--policy hf needs the train extra")
    model = _cached_tiny_model()
    out = tmp_path / "policy.jsonl"
    kwargs = json.dumps({"source_kwargs": {"data_files": str(fixture_file("gsm8k"))}})
    code = main(["eval", "CodeExec-GSM8K-v0", "--policy", "hf", "--model", model,
                 "--max-new-tokens", "24", "--n-samples", "2", "--episodes", "2",
                 "--max-turns", "2", "--sandbox", "local", "--env-kwargs", kwargs,
                 "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "agent=hf" in text and text.strip().splitlines()[-1].split()[0] == "pass@2"
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 4
    # the model's own text reached the env: the first assistant turn is what the policy wrote
    assert all(ln["messages"][2]["role"] == "assistant" for ln in lines)
