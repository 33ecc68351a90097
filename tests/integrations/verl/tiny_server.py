"""A verl server client backed by the real tiny model, and helpers of the agent-loop tests.

:class:`TinyServerManager` has the interface of verl's ``LLMServerClient`` that agent loops use:
``await generate(request_id, prompt_ids=..., sampling_params=...) -> TokenOutput``. It samples
with the real tiny transformers model (:class:`branchgym.agents.hf.HFPolicy`), or, for a prompt
that its ``script`` answers, returns the scripted text's tokens with the model's own log-probs
for them (a tool-using episode that a 2-layer random model would never write). The envs, the
sandbox and verl's classes are real.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Callable

TINY = {"vocab_size": 1024, "layers": 2, "hidden": 64, "head_dim": 32, "kv_heads": 1,
        "intermediate": 128, "seed": 0}
"""The tiny model of the rollout tests (same settings, so the cached build is shared)."""


def require_verl() -> None:
    """Skip off CI when verl does not import (with the fix); fail in CI, where it is installed."""
    import os

    import pytest

    try:
        import verl  # noqa: F401
        from verl.experimental.agent_loop import agent_loop  # noqa: F401
    except ImportError as e:
        msg = (f"verl does not import ({e}); `make setup` installs it (pip install --no-deps verl==0.9.1 "
               "and the verl extra)")
        if os.environ.get("BRANCHGYM_REQUIRE_DOCKER"):
            pytest.fail(msg)
        pytest.skip(msg)


def tiny_model_dir() -> Path:
    from branchgym.agents import tiny

    return tiny.build_cached(**TINY)


class TinyServerManager:
    """verl's server-client interface over the tiny model (picklable: the model loads lazily)."""

    def __init__(self, model_dir: str | Path, *, seed: int = 0,
                 script: Callable[[str], str | None] | None = None, topk_replica: bool = False) -> None:
        self.model_dir = str(model_dir)
        self.seed = seed
        self.script = script
        self.topk_replica = topk_replica
        self.returned: list[list[int]] = []  # every TokenOutput's ids, in order
        self.requests: list[dict[str, Any]] = []
        self._policy = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_policy": None}

    @property
    def policy(self) -> Any:
        if self._policy is None:
            from branchgym.agents.hf import HFPolicy

            self._policy = HFPolicy(self.model_dir, device="cpu", seed=self.seed)
        return self._policy

    def score(self, prompt_ids: list[int], ids: list[int]) -> list[float]:
        """The model's log-probs of ``ids`` after ``prompt_ids`` (T = 1)."""
        import torch

        with torch.no_grad():
            logp, _ = self.policy.forward_logprobs(torch.tensor([prompt_ids + ids]), with_entropy=False)
        return [float(x) for x in logp[0, len(prompt_ids):]]

    def top_logprobs(self, prompt_ids: list[int], ids: list[int], k: int) -> list[dict[int, float]]:
        """Per generated position, the model's k most likely tokens and the sampled one (T = 1)."""
        import torch

        with torch.no_grad():
            logits = self.policy.model(torch.tensor([prompt_ids + ids])).logits[0].float()
        logp = torch.log_softmax(logits, dim=-1)
        out = []
        for t, tok in enumerate(ids):
            row = logp[len(prompt_ids) + t - 1]
            top = torch.topk(row, k)
            d = {int(i): float(v) for v, i in zip(top.values, top.indices)}
            d.setdefault(int(tok), float(row[tok]))
            out.append(d)
        return out

    async def generate(self, request_id: str, *, prompt_ids: list[int], sampling_params: dict[str, Any],
                       **kwargs: Any) -> Any:
        from verl.workers.rollout.replica import TokenOutput

        from branchgym.agents.policy import SamplingParams

        self.requests.append({"request_id": request_id, **sampling_params})
        prompt_ids = [int(t) for t in prompt_ids]
        text = self.script(self.policy.decode(prompt_ids)) if self.script else None
        if text is not None:
            ids = self.policy.encode(text)
            logprobs = self.score(prompt_ids, ids)
        else:
            params = SamplingParams(
                max_new_tokens=int(sampling_params["max_tokens"]),
                temperature=float(sampling_params.get("temperature", 1.0)),
                top_p=float(sampling_params.get("top_p", 1.0)),
                top_k=max(int(sampling_params.get("top_k", -1)), 0),
                stop=tuple(sampling_params.get("stop", ())),
            )
            [c] = await self.policy.agenerate([prompt_ids], params)
            ids, logprobs = list(c.token_ids), list(c.logprobs)
        self.returned.append(list(ids))
        extra = {}
        k = (sampling_params.get("extra_args") or {}).get("top_logprobs")
        if k and self.topk_replica:  # a replica that returns top-k log-probs (verl's stock vLLM replica does not)
            extra["top_logprobs"] = self.top_logprobs(prompt_ids, ids, int(k))
        return TokenOutput(token_ids=ids, log_probs=logprobs, stop_reason="completed", extra_fields=extra)


class CodeScript:
    """Stateful ``<python>`` calls with random constants (then an answer after ``calls`` results),
    so that a branch whose sandbox were shared with, or not copied from, its parent would print
    something else than a fresh replay."""

    def __init__(self, calls: int = 3, seed: int = 0) -> None:
        self.calls = calls
        self.rng = random.Random(seed)

    def __call__(self, context: str) -> str:
        if context.count("<result>") >= self.calls:
            return "<answer>\\boxed{0}</answer>"
        k = self.rng.randrange(1, 1000)
        return (f"<python>s = globals().get('s', 0) * 7 + {k}\n"
                f"open('log.txt', 'a').write('{k},')\n"
                f"print(s, open('log.txt').read())</python>")


class LookupScript:
    """The lookup task played by a coin: search the asked item, then answer with the code the
    result shows or with a wrong one (``p_right``), so a tree's leaves get different rewards."""

    def __init__(self, p_right: float = 0.5, seed: int = 0) -> None:
        self.p_right = p_right
        self.rng = random.Random(seed)

    def __call__(self, context: str) -> str:
        import re

        results = re.findall(r"code=(\d+)", context)
        if not results:
            item = re.findall(r"item #(\d+)", context)[-1]
            return f"<search>{item}</search>"
        code = results[-1] if self.rng.random() < self.p_right else "0"
        return f"<answer>\\boxed{{{code}}}</answer>"


def recipe_trainer(estimator: str, **estimator_params: Any) -> Any:
    """The recipe's v1 trainer with only what ``_compute_advantage`` reads (no workers, no model)."""
    from omegaconf import OmegaConf
    from verl.trainer.ppo.v1 import get_trainer_cls

    import branchgym.integrations.verl.recipe  # noqa: F401  (registers the trainers)

    cls = get_trainer_cls("branchgym_sync")
    trainer = object.__new__(cls)
    trainer.config = OmegaConf.create({
        "algorithm": {"adv_estimator": estimator, "use_kl_in_reward": False, "gamma": 1.0,
                      "lam": 1.0, "norm_adv_by_std_in_grpo": True,
                      "rollout_correction": {"rollout_is": None, "rollout_rs": None,
                                             "bypass_mode": False}},
        "actor_rollout_ref": {"rollout": {"n": 1}},
        "branchgym_algo": {"estimator_params": estimator_params},
    })
    return trainer


class FirstCallScript:
    """Scripts the first model segment only (a search call); the model samples the rest."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.used = False

    def __call__(self, context: str) -> str | None:
        if self.used:
            return None
        self.used = True
        return self.text


def make_raising_env(**kwargs: Any) -> Any:
    """The lookup env whose python-side ``step`` raises (a tool backend that is down)."""
    import gymnasium as gym

    from branchgym.algorithms.quickstart_task import make_lookup_env

    class Down(gym.Wrapper):
        def step(self, action: str) -> Any:
            raise RuntimeError("search backend is down")

    return Down(make_lookup_env(**kwargs))


STEP_SPANS: list[tuple[float, float]] = []
"""(start, end) perf_counter times of every step of :func:`make_slow_env` envs in this process."""


def make_slow_env(seconds: float = 0.3, **kwargs: Any) -> Any:
    """The lookup env whose ``step`` takes ``seconds`` (a slow tool), recording when it ran."""
    import time

    import gymnasium as gym

    from branchgym.algorithms.quickstart_task import make_lookup_env

    class Slow(gym.Wrapper):
        def step(self, action: str) -> Any:
            t0 = time.perf_counter()
            time.sleep(seconds)
            out = self.env.step(action)
            STEP_SPANS.append((t0, time.perf_counter()))
            return out

    return Slow(make_lookup_env(**kwargs))
