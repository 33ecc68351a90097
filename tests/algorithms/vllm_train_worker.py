"""Trains with ``rollout_backend="vllm"`` in its own process for test_trainer_vllm.py.

vLLM's engine spawns workers, so it must start under ``__main__`` (not inside pytest). Writes
the per-step metrics and the engine's greedy completions after training as JSON.
Usage: python vllm_train_worker.py MODEL_DIR OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ENV = "branchgym.algorithms.quickstart_task:make_lookup_env"


def main(model_dir: str, out_dir: str) -> None:
    from branchgym.agents.policy import SamplingParams
    from branchgym.algorithms.quickstart_task import lookup_tasks
    from branchgym.algorithms.train_config import preset
    from branchgym.algorithms.trainer import Trainer

    out = Path(out_dir)
    cfg = preset(
        "grpo", env=ENV, env_kwargs={"reward": "arpo_train"}, split="smoke", model=model_dir, out=str(out / "run"),
        steps=2, prompts_per_step=2, group_size=8, max_new_tokens=24, max_response_tokens=64, lr=1e-3,
        progress=False, threads=1, checkpoint_every=1, tensorboard=False, plots=False, rollout_backend="vllm",
        overlong_buffer_frac=0.75,  # length shaping: rewards differ within a group even when all are wrong
        vllm_kwargs={"max_model_len": 512, "enforce_eager": True, "kv_cache_gib": 1},
    )
    trainer = Trainer(cfg)
    steps: list[dict[str, float]] = []
    try:
        trainer.run(on_step=lambda step, m: steps.append(m))
        engine = trainer.rollout_policy
        prompts = [engine.encode_chat([{"role": "user", "content": t.question}]) for t in lookup_tasks("smoke")[:3]]
        greedy = engine.generate(prompts, SamplingParams(max_new_tokens=24, temperature=0.0))
        res = {"backend": type(engine).__name__, "steps": steps, "prompts": prompts,
               "greedy": [c.token_ids for c in greedy]}
    finally:
        trainer.close()
    (out / "result.json").write_text(json.dumps(res))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
