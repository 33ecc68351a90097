"""Supervised warm start on oracle trajectories (``OracleAgent`` transcripts of an offline env).

Each example is laid out exactly as the token-in/token-out agent loop lays out an episode
(:mod:`branchgym.agents.loop`): the prompt is the chat template over ``info["messages"]`` up to
the assistant header; every action's tokens follow (loss mask 1, what the model must learn to
write, ending in the protocol's stop string); every observation's tokens follow the action
(loss mask 0: tool results are never trained on). The loss is the mean next-token cross-entropy
over the mask-1 tokens.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from branchgym.errors import ConfigError
from branchgym.fields import ranged, validate

__all__ = ["SFTConfig", "SFTExample", "oracle_examples", "sft_train"]


@dataclass(frozen=True)
class SFTConfig:
    """Supervised fine-tuning hyper-parameters."""

    steps: int = ranged(200, ge=0)
    """optimizer steps."""
    batch_size: int = ranged(16, ge=1)
    """examples per step."""
    lr: float = ranged(3e-3, gt=0.0, le=1.0, hint="e.g. 3e-3 for the tiny model")
    """AdamW learning rate (tiny models need large ones)."""
    weight_decay: float = ranged(0.0, ge=0.0)
    max_grad_norm: float = ranged(1.0, gt=0.0, hint="1.0 is usual")
    seed: int = ranged(0, ge=0)
    """seeds the example order."""

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class SFTExample:
    """Token ids of one oracle episode and its loss mask (1 on the agent's action tokens)."""

    token_ids: tuple[int, ...]
    loss_mask: tuple[int, ...]
    task_id: str


def _encode_chat(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
    if isinstance(ids, dict) or hasattr(ids, "input_ids"):
        ids = ids["input_ids"]
    return [int(t) for t in ids]


def oracle_examples(make_env: Callable[[], Any], tokenizer: Any, task_ids: Sequence[str]) -> list[SFTExample]:
    """Play ``OracleAgent`` on each task and record the episode as token ids + loss mask.

    Episodes the oracle does not solve (reward ≤ 0) are dropped.
    """
    from branchgym.agents.scripted import OracleAgent

    env = make_env()
    out: list[SFTExample] = []
    try:
        for tid in task_ids:
            obs, info = env.reset(options={"task_id": tid})
            agent = OracleAgent()
            agent.reset(obs, info)
            ids = _encode_chat(tokenizer, info["messages"])
            mask = [0] * len(ids)
            reward, done = 0.0, False
            while not done:
                action = agent.act(obs)
                a_ids = tokenizer.encode(action, add_special_tokens=False)
                ids += a_ids
                mask += [1] * len(a_ids)
                obs, reward, term, trunc, info = env.step(action)
                done = term or trunc
                if not done and obs:
                    o_ids = tokenizer.encode(obs, add_special_tokens=False)
                    ids += o_ids
                    mask += [0] * len(o_ids)
            if reward > 0:
                out.append(SFTExample(tuple(ids), tuple(mask), tid))
    finally:
        env.close()
    if not out:
        raise ConfigError(
            "the oracle solved none of the given tasks, so there is nothing to imitate; check that "
            "the env's tasks have gold paths (offline envs do) and that its tools are enabled."
        )
    return out


def sft_loss(model: Any, batch: Sequence[SFTExample], pad_id: int) -> Any:
    """Mean cross-entropy of the mask-1 tokens given their prefixes (right-padded batch)."""
    import torch

    width = max(len(e.token_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    att = torch.zeros_like(ids)
    lm = torch.zeros_like(ids)
    for r, e in enumerate(batch):
        n = len(e.token_ids)
        ids[r, :n] = torch.tensor(e.token_ids)
        att[r, :n] = 1
        lm[r, :n] = torch.tensor(e.loss_mask)
    pos = (att.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=ids, attention_mask=att, position_ids=pos).logits[:, :-1].float()
    target, mask = ids[:, 1:], lm[:, 1:].float()
    nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="none")
    return (nll.view_as(mask) * mask).sum() / mask.sum().clamp(min=1.0)


def sft_train(
    model: Any, examples: Sequence[SFTExample], config: SFTConfig, *, pad_id: int,
    on_step: Callable[[int, float], bool | None] | None = None,
) -> list[float]:
    """Fine-tune ``model`` in place on ``examples``; returns the loss per step.

    ``on_step(step, loss)`` runs after each optimizer step; returning ``True`` stops training
    there (early stopping on a validation score, say).
    """
    import torch

    if not examples:
        raise ConfigError("sft_train got no examples; build them with oracle_examples(...).")
    rng = random.Random(config.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    order: list[int] = []
    losses: list[float] = []
    model.train()
    for step in range(config.steps):
        batch = []
        for _ in range(min(config.batch_size, len(examples))):
            if not order:
                order = list(range(len(examples)))
                rng.shuffle(order)
            batch.append(examples[order.pop()])
        loss = sft_loss(model, batch, pad_id)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        opt.step()
        losses.append(float(loss.detach()))
        if on_step is not None and on_step(step, losses[-1]):
            break
    model.eval()
    return losses
