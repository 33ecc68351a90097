"""Two verl training steps of the branchgym recipe, end to end, on one CUDA GPU.

    python examples/verl/gpu_smoke.py [--algo aepo|arpo|grpo] [--workdir DIR] [--steps 2]

What it runs: a tiny Qwen2-shaped model built locally (``branchgym.agents.tiny``: random weights,
a locally trained tokenizer; nothing is downloaded), ``branchgym verl-data`` on the offline
WebSearch env's ``smoke`` split, then ``python -m branchgym.integrations.verl.recipe`` with the
shipped ``<algo>_qwen3_8b_1node`` config shrunk to one GPU (vLLM rollout, FSDP actor, the
``branchgym_tree`` agent loop for aepo/arpo). It passes when the trainer logs ``steps`` steps
with a policy loss; the last lines of the log and a JSON summary are printed, and the exit
status is 0 only then. Used by tests/integrations/verl/test_gpu_smoke.py (marker ``gpu``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

TINY = {"vocab_size": 2048, "layers": 2, "hidden": 64, "pretrain_steps": 200, "seed": 0}
ENV = "WebSearch-Offline-v0"


def overrides(algo: str, model: Path, train: Path, val: Path, steps: int, out: Path) -> list[str]:
    """The shipped config shrunk to one GPU and a tiny model."""
    tree = algo in ("aepo", "arpo")
    leaves = 4
    prompts = 2
    rows = prompts * (leaves if tree else 4)
    common = [
        f"actor_rollout_ref.model.path={model}",
        f"data.train_files={train}",
        f"data.val_files={val}",
        f"data.train_batch_size={prompts}",
        "data.max_prompt_length=1024",
        "data.max_response_length=512",
        "data.dataloader_num_workers=0",
        "actor_rollout_ref.model.enable_gradient_checkpointing=false",
        "actor_rollout_ref.model.use_remove_padding=false",
        f"actor_rollout_ref.actor.ppo_mini_batch_size={rows if tree else prompts}",
        "actor_rollout_ref.actor.ppo_max_token_len_per_gpu=4096",
        "actor_rollout_ref.actor.optim.lr=1e-5",
        "actor_rollout_ref.rollout.tensor_model_parallel_size=1",
        "actor_rollout_ref.rollout.gpu_memory_utilization=0.3",
        "actor_rollout_ref.rollout.max_num_batched_tokens=4096",
        "actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu=4096",
        "actor_rollout_ref.rollout.agent.num_workers=1",
        "actor_rollout_ref.rollout.enforce_eager=true",
        "trainer.n_gpus_per_node=1",
        "trainer.nnodes=1",
        f"trainer.total_training_steps={steps}",
        "trainer.test_freq=-1",
        "trainer.save_freq=-1",
        "trainer.val_before_train=false",
        "trainer.logger=[console]",
        f"trainer.default_local_dir={out / 'ckpt'}",
        "branchgym.call_limit=2",
        "+branchgym.max_new_tokens=64",
    ]
    if tree:
        common += [f"branchgym.branch.n={leaves}", "branchgym.branch.initial=2"]
    else:
        common += ["actor_rollout_ref.rollout.n=4"]
    return common


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--algo", default="aepo", choices=["aepo", "arpo", "grpo"])
    ap.add_argument("--workdir", default="runs/verl-gpu-smoke")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=1500.0, help="seconds for the training run")
    args = ap.parse_args(argv)

    from branchgym.agents import tiny
    from branchgym.integrations.verl.data import build_rows, write_parquet

    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    agent = "branchgym" if args.algo == "grpo" else "branchgym_tree"
    t0 = time.perf_counter()
    model = tiny.build_cached(**TINY)
    rows = build_rows(ENV, split="smoke", agent=agent, limit=8)
    train = write_parquet(rows, work / "train.parquet")
    val = write_parquet(build_rows(ENV, split="smoke", agent=agent, limit=2), work / "val.parquet")
    cmd = [sys.executable, "-m", "branchgym.integrations.verl.recipe",
           "--config-name", f"{args.algo}_qwen3_8b_1node",
           *overrides(args.algo, model, train, val, args.steps, work)]
    env = {**os.environ, "HYDRA_FULL_ERROR": "1", "TOKENIZERS_PARALLELISM": "false"}
    print("+", " ".join(cmd), flush=True)
    log_path = work / "train.log"
    with open(log_path, "w") as log:
        try:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                  timeout=args.timeout, cwd=work)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc = 124
    text = log_path.read_text(errors="replace")
    steps = sorted({int(m) for m in re.findall(r"step:(\d+) - ", text)})
    losses = re.findall(r"actor/pg_loss:([-0-9.e+naif]+)", text)
    summary = {
        "algo": args.algo,
        "returncode": rc,
        "steps_logged": steps,
        "pg_losses": losses[: args.steps],
        "seconds": round(time.perf_counter() - t0, 1),
        "log": str(log_path),
    }
    print("\n".join(text.splitlines()[-40:]))
    print(json.dumps(summary))
    ok = rc == 0 and args.steps in steps and len(losses) >= args.steps
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
