"""Runs the vLLM engine in its own process for test_vllm.py and writes what it saw as JSON.

vLLM spawns worker processes, so its engine must start under ``__main__`` (not inside pytest).
Usage: python vllm_worker.py MODEL_DIR OUT_DIR [CALCULATOR_DIR]

With CALCULATOR_DIR (``calculator_tiny.teach_calculator``'s model), the same engine then loads
those weights and plays the README's calculator tool (a user-registered tool) in a ``ToolEnv``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

QUESTIONS = ("Who founded the band river?", "Which town is the oldest?", "a", "Sum the table.")
TOOL_STOPS = ("</search>", "</python>", "</browse>", "</answer>")


def _c(c) -> dict:
    return {
        "prompt_index": c.prompt_index,
        "token_ids": c.token_ids,
        "logprobs": c.logprobs,
        "entropies": c.entropies,
        "text": c.text,
        "finish_reason": c.finish_reason,
        "stop_string": c.stop_string,
        "entropy_kind": c.entropy_kind,
        "top_logprobs": None
        if c.top_logprobs is None
        else [{str(k): v for k, v in d.items()} for d in c.top_logprobs],
    }


def main(model_dir: str, out_dir: str, calculator_dir: str | None = None) -> None:
    import torch
    from toy_tool_env import ToyToolEnv
    from transformers import AutoModelForCausalLM

    from branchgym.agents.loop import run_episodes
    from branchgym.agents.policy import SamplingParams
    from branchgym.agents.vllm import VLLMPolicy

    out = Path(out_dir)
    pol = VLLMPolicy(model_dir, dtype="float32", max_model_len=2048, enforce_eager=True)
    prompts = [
        pol.encode_chat(
            [{"role": "system", "content": "Answer with tools."}, {"role": "user", "content": q}]
        )
        for q in QUESTIONS
    ]
    res: dict = {"prompts": prompts, "vocab_size": pol.vocab_size}
    greedy = SamplingParams(max_new_tokens=32, temperature=0.0)
    res["greedy"] = [_c(c) for c in pol.generate(prompts, greedy)]
    sampled = SamplingParams(
        max_new_tokens=64, temperature=1.0, logprobs_topk=10, seed=0, n=3, stop=TOOL_STOPS
    )
    res["sampled"] = [_c(c) for c in pol.generate(prompts, sampled)]
    pol.exact_entropy = True  # the whole distribution per position: exact entropies
    res["exact"] = [_c(c) for c in pol.generate(prompts[:2], sampled.replace(n=1, seed=1))]
    pol.exact_entropy = False
    envs = [ToyToolEnv(max_turns=4) for _ in range(6)]
    trajs = run_episodes(
        envs,
        pol,
        SamplingParams(max_new_tokens=48, logprobs_topk=10, seed=3),
        max_response_tokens=300,
    )
    res["episodes"] = [
        {
            **t.to_dict(),
            "token_ids": t.token_ids,
            "full_loss_mask": t.full_loss_mask,
            "transcript": t.transcript,
            "env_actions": e.actions,
        }
        for t, e in zip(trajs, envs, strict=False)
    ]
    # on-policy weight sync: perturb the weights as a trainer step would, push them, re-generate
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    model.save_pretrained(out / "perturbed")
    res["loaded"] = pol.load_weights(model.state_dict())
    res["greedy_after_load"] = [_c(c) for c in pol.generate(prompts, greedy)]
    if calculator_dir is not None:
        res["calculator"] = _calculator(pol, calculator_dir)
    pol.close()
    (out / "result.json").write_text(json.dumps(res))


def _calculator(pol, calculator_dir: str) -> dict:
    """Greedy generation with and without the env's stop strings, and one episode with a limit
    of 2 calculator calls, on the calculator-taught weights."""
    import torch
    from calculator_tiny import calculator_env
    from transformers import AutoModelForCausalLM

    from branchgym.agents.loop import run_episodes
    from branchgym.agents.policy import SamplingParams

    taught = AutoModelForCausalLM.from_pretrained(calculator_dir, dtype=torch.float32)
    pol.load_weights(taught.state_dict())
    greedy = SamplingParams(max_new_tokens=40, temperature=0.0)
    env = calculator_env(max_calls={"calculator": 2})
    _, info = env.reset(seed=0)
    prompt = pol.encode_chat(info["messages"])
    (traj,) = run_episodes([env], pol, greedy, max_response_tokens=400)
    env.close()
    return {
        "stop_strings": list(env.stop_strings),
        "free": _c(pol.generate([prompt], greedy)[0]),
        "stopped": _c(pol.generate([prompt], greedy.replace(stop=env.stop_strings))[0]),
        "segments": [[s.finish_reason, s.stop_string] for s in traj.segments],
        "steps": [[s.action, s.observation] for s in traj.steps],
        "tool_calls": traj.info.get("tool_calls"),
    }


if __name__ == "__main__":
    main(*sys.argv[1:4])
