"""The tiny model the rollout and trainer tests share, built once per machine and cached."""

from __future__ import annotations

import hashlib
import inspect
import shutil
import tempfile
from pathlib import Path

__all__ = ["ROLLOUT_TINY", "tiny_dir", "sft_tiny_dir"]

ROLLOUT_TINY = {"vocab_size": 1024, "layers": 2, "hidden": 64, "head_dim": 32, "kv_heads": 1,
                "intermediate": 128, "seed": 0}


def tiny_dir(**cfg: int) -> Path:
    """Build (once per machine) and return the tiny model for ``cfg``."""
    from branchgym.agents import tiny

    return tiny.build_cached(**cfg)


def sft_tiny_dir(steps: int = 40) -> Path:
    """The tiny model after ``steps`` SFT steps on lookup-task oracle episodes (cached).

    It writes well-formed episodes only part of the time, so the ``arpo_train`` reward (−1 for a
    bad format, F1 otherwise) varies within a group and RL updates have a real gradient.
    """
    import torch

    from branchgym.agents.hf import HFPolicy
    from branchgym.algorithms import sft

    base = tiny_dir(**ROLLOUT_TINY)
    key = hashlib.sha256((base.name + str(steps) + inspect.getsource(sft)).encode()).hexdigest()[:16]
    final = base.parent / f"sft-{key}"
    if not (final / "config.json").exists():
        from branchgym.algorithms.quickstart_task import lookup_tasks, make_lookup_env

        torch.manual_seed(0)
        policy = HFPolicy(base, device="cpu", seed=0)
        examples = sft.oracle_examples(lambda: make_lookup_env("train"), policy.tokenizer,
                                       [t.id for t in lookup_tasks("train")[:64]])
        sft.sft_train(policy.model, examples, sft.SFTConfig(steps=steps, batch_size=8, lr=3e-3),
                      pad_id=policy.pad_token_id)
        tmp = Path(tempfile.mkdtemp(dir=base.parent, prefix=".sft-"))
        policy.model.save_pretrained(tmp)
        policy.tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(final)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    return final
