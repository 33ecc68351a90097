"""OpenAIPolicy against a real OpenAI-compatible server on loopback: vLLM's own API server on
CPU serving the tiny model, started as a subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from toy_tool_env import ToyToolEnv

from branchgym.agents.loop import run_episodes
from branchgym.agents.policy import SamplingParams
from branchgym.errors import ConfigError, PolicyError

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_path, tmp_path_factory):
    port = _free_port()
    log = open(tmp_path_factory.mktemp("openai") / "server.log", "w+")
    cmd = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(tiny_path),
        "--served-model-name",
        "tiny",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "float32",
        "--max-model-len",
        "2048",
        "--enforce-eager",
        "--logprobs-mode",
        "processed_logprobs",
        "--max-logprobs",
        "20",
    ]
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1")
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"vLLM server exited with {proc.returncode}:\n{log.read()[-4000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(2)
        else:
            pytest.fail("vLLM server did not answer within 600 s")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and the engine processes it started
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def policy(server, tiny_path):
    from branchgym.agents.openai import OpenAIPolicy

    p = OpenAIPolicy(server, "tiny", tokenizer=tiny_path)
    yield p
    p.close()


def test_openai_policy_completes_whole_episodes(policy, hf_policy):
    envs = [ToyToolEnv(max_turns=4) for _ in range(4)]
    params = SamplingParams(max_new_tokens=48, logprobs_topk=5, seed=4)
    trajs = run_episodes(envs, policy, params, max_response_tokens=300)
    lp, _ = hf_policy.sequence_logprobs([t.token_ids for t in trajs])
    for env, t, row in zip(envs, trajs, lp, strict=False):
        assert t.done and t.steps  # the env was stepped until the episode ended
        assert [s.action for s in t.steps] == env.actions
        assert hf_policy.decode(t.token_ids) == t.transcript
        p = len(t.prompt_ids)
        for i, m in enumerate(t.full_loss_mask):
            if m:  # server logprobs == a fresh forward pass over the exact ids
                assert abs(row[i] - t.logprobs[i - p]) < 1e-4
        for seg in t.segments:
            assert seg.entropy is not None and seg.top_logprobs


def test_openai_greedy_equals_hf_and_reports_stops(policy, hf_policy):
    prompts = [
        hf_policy.encode_chat([{"role": "user", "content": q}]) for q in ("Who is it?", "a b")
    ]
    greedy = SamplingParams(max_new_tokens=24, temperature=0.0)
    got = policy.generate(prompts, greedy)
    want = hf_policy.generate(prompts, greedy)
    assert [g.token_ids for g in got] == [w.token_ids for w in want]
    assert all(g.meta["exact_tokens"] for g in got)
    sampled = policy.generate(
        prompts * 4,
        SamplingParams(max_new_tokens=64, seed=0, stop=("</search>", "</python>", "</browse>")),
    )
    stopped = [c for c in sampled if c.finish_reason == "stop"]
    assert stopped
    for c in stopped:
        assert c.stop_string and c.text.endswith(c.stop_string)
        assert hf_policy.decode(c.token_ids) == c.text


def test_openai_errors_are_clear(server, tiny_path):
    from branchgym.agents.openai import OpenAIPolicy

    with pytest.raises(ConfigError, match="http"):
        OpenAIPolicy("127.0.0.1:1", "tiny", tokenizer=tiny_path)
    with pytest.raises(ConfigError, match="tokenizer"):
        OpenAIPolicy(server, "no-such-dir")
    bad = OpenAIPolicy(server, "not-served", tokenizer=tiny_path)
    with pytest.raises(PolicyError, match="404|not-served|does not exist"):
        bad.generate([[1, 2, 3]], SamplingParams(max_new_tokens=2))
    dead = OpenAIPolicy(f"http://127.0.0.1:{_free_port()}/v1", "tiny", tokenizer=tiny_path)
    with pytest.raises(PolicyError, match="cannot reach"):
        dead.generate([[1, 2, 3]], SamplingParams(max_new_tokens=2))


def test_branchgym_eval_with_the_openai_policy(server, tiny_path, tmp_path, capsys):
    """``branchgym eval --policy openai`` end to end against the served model on loopback."""
    import json

    from branchgym.cli import main

    out = tmp_path / "eval.jsonl"
    code = main(["eval", "WebSearch-Offline-v0", "--split", "smoke", "--policy", "openai", "--base-url", server,
                 "--model", "tiny", "--tokenizer", str(tiny_path), "--max-new-tokens", "24", "--episodes", "2",
                 "--n-samples", "2", "--max-turns", "2", "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "agent=openai" in text and text.strip().splitlines()[-1].split()[0] == "pass@2"
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 4 and all(ln["messages"][2]["role"] == "assistant" for ln in lines)
