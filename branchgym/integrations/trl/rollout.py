"""A TRL ``rollout_func`` that runs branchgym's rollout engine (flat or tree) on branchgym envs.

TRL's ``GRPOTrainer(rollout_func=...)`` calls ``rollout_func(prompts, trainer)`` with this
process's slice of the generation batch: every prompt appears ``num_generations`` times in a row
(TRL's ``RepeatSampler``). :class:`BranchgymRollout` reads each run of ``G`` equal prompts as one
task id, plays one GRPO group for it with :func:`~branchgym.algorithms.rollout.flat_rollout`
(``G`` independent episodes) or :func:`~branchgym.algorithms.rollout.tree_rollout` (one tree of
``branch.n == G`` trajectories that branch by cloning the env), and returns, row for row:

- ``prompt_ids``: the chat-template ids of the env's first messages (the env renders the
  prompt; the dataset's ``prompt`` column only names the task);
- ``completion_ids``: the response exactly as played, model segments and observation tokens;
- ``logprobs``: the generator's log-probs of the sampled tokens (0.0 on observation tokens);
- ``env_mask``: 1 on model tokens, 0 on observation tokens (TRL multiplies it into the loss
  mask);
- ``env_reward``: the episode's env reward, which :func:`env_reward` hands back to TRL as a
  reward function, so the reward TRL logs and trains on is the env's.

Groups stay whole on one process because a tree cannot be split: the per-process generation
batch (``per_device_train_batch_size × steps_per_generation``) must be a multiple of
``num_generations``; the rollout checks that each run of ``G`` prompts is one task.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from branchgym.errors import ConfigError

__all__ = ["BranchgymRollout", "TrainerGenerator", "env_reward", "task_dataset"]


def _require_trl() -> None:
    try:
        import trl  # noqa: F401
    except ImportError as e:
        raise ImportError(
            f"the TRL integration needs TRL: pip install 'branchgym[trl]' (import failed: {e})"
        ) from e


def task_dataset(task_ids: Sequence[str]) -> Any:
    """A ``datasets.Dataset`` whose ``prompt`` column holds task ids, for :class:`BranchgymRollout`.

    >>> ds = task_dataset(["lookup-train-0000", "lookup-train-0001"])  # doctest: +SKIP
    """
    from datasets import Dataset

    ids = [str(t) for t in task_ids]
    if not ids:
        raise ConfigError("task_dataset needs at least one task id (e.g. [t.id for t in env.unwrapped.tasks]).")
    return Dataset.from_dict({"prompt": ids, "task_id": ids})


def env_reward(completions: list[Any], env_reward: list[float] | None = None, **kwargs: Any) -> list[float]:
    """TRL reward function: the env's episode reward, passed through by :class:`BranchgymRollout`.

    TRL logs it as ``rewards/env_reward/mean``. Pass it as ``reward_funcs=[env_reward]``.
    """
    if env_reward is None:
        raise ConfigError(
            "env_reward found no 'env_reward' field: it reads the reward that BranchgymRollout returns; "
            "pass rollout_func=BranchgymRollout(...) to GRPOTrainer."
        )
    if len(env_reward) != len(completions):
        raise ConfigError(f"env_reward has {len(env_reward)} rewards for {len(completions)} completions.")
    return [float(r) for r in env_reward]


class TrainerGenerator:
    """The trainer's model as a :class:`~branchgym.agents.policy.TokenGenerator` (after :meth:`bind`).

    Without vLLM it is :class:`~branchgym.agents.hf.HFPolicy` over the unwrapped trainer model
    (exact log-probs and entropies from the logits; the model is put back in training mode
    after each call). With ``use_vllm`` it talks to TRL's engine: the colocated ``vllm.LLM``
    (:class:`~branchgym.agents.vllm.VLLMPolicy` over it) or TRL's vLLM server through its
    OpenAI-compatible completions endpoint (:class:`~branchgym.agents.openai.OpenAIPolicy`).
    TRL pushes the new weights to vLLM before it calls the rollout function.
    """

    def __init__(self, trainer: Any, *, seed: int = 0) -> None:
        self.trainer = trainer
        self.seed = seed
        self._policy: Any = None
        self._model: Any = None

    def bind(self, model: Any = None) -> TrainerGenerator:
        """Generate with ``model``, the unwrapped trainer model (ignored with vLLM); returns self."""
        t = self.trainer
        if getattr(t, "use_vllm", False):
            if self._policy is None:
                self._policy = _vllm_policy(t)
        elif self._policy is None or self._model is not model:
            from branchgym.agents.hf import HFPolicy

            if model is None:
                raise ConfigError("TrainerGenerator.bind(model) needs the unwrapped trainer model (no vLLM here).")
            self._policy = HFPolicy(model, t.processing_class, device=str(t.accelerator.device),
                                    seed=self.seed + t.accelerator.process_index)
            self._model = model
        return self

    @property
    def policy(self) -> Any:
        if self._policy is None:
            raise ConfigError("TrainerGenerator is not bound to a model yet; call bind(model) first.")
        return self._policy

    # -- TokenGenerator -------------------------------------------------------------------------

    def generate(self, prompts: list[list[int]], params: Any) -> list[Any]:
        """Continue every prompt (exact ids in, exact ids out; docs/rollout.md)."""
        return self.policy.generate(prompts, params)

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        return self.policy.encode_chat(messages)

    def encode(self, text: str) -> list[int]:
        return self.policy.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        return self.policy.decode(ids)

    @property
    def vocab_size(self) -> int:
        return self.policy.vocab_size


@contextlib.contextmanager
def _vllm_awake(trainer: Any) -> Iterator[None]:
    """TRL's colocated engine, awake for the rollout when it sleeps between generations (TRL's own
    ``generate`` does the same: weights pushed if they were dropped, KV cache woken, then level-2 sleep)."""
    gen = trainer.vllm_generation
    if trainer.vllm_mode != "colocate":
        yield
        return
    if getattr(gen, "tensor_parallel_size", 1) > 1:
        raise ConfigError(
            f"vllm_tensor_parallel_size={gen.tensor_parallel_size}: the ranks of a tensor-parallel group must send "
            "vLLM identical prompts, but each rank plays its own episodes; use vllm_tensor_parallel_size=1 or "
            "vllm_mode='server'."
        )
    if not getattr(gen, "enable_sleep_mode", False):
        yield
        return
    if getattr(gen, "_llm_weights_sleeping", False):
        gen.sync_weights()
    gen.llm.wake_up(tags=["kv_cache"])
    try:
        yield
    finally:
        gen.llm.sleep(level=2)
        gen._llm_weights_sleeping = True


def _vllm_policy(trainer: Any) -> Any:
    gen = trainer.vllm_generation
    if trainer.vllm_mode == "colocate":
        from branchgym.agents.vllm import VLLMPolicy

        class _Colocated(VLLMPolicy):
            """VLLMPolicy over TRL's own colocated engine (TRL owns its weights and lifetime)."""

            def __init__(self, llm: Any) -> None:
                self.llm = llm
                self.exact_entropy = False
                self.model_path = ""
                self.tokenizer = llm.get_tokenizer()
                self._vocab = len(self.tokenizer.get_vocab())
                self._closed = False
                self._weights_dir = None

            def close(self) -> None:  # the engine is TRL's
                self._closed = True

        return _Colocated(gen.llm)
    from branchgym.agents.openai import OpenAIPolicy

    client = gen.vllm_client
    return OpenAIPolicy(f"{client.base_url}/v1", client.model, trainer.processing_class)


class BranchgymRollout:
    """``rollout_func`` for TRL's ``GRPOTrainer``: flat (``branch=None``) or tree rollouts.

    Args:
        make_env: builds one env (``lambda: gym.make("WebSearch-Offline-v0", split="train")``)
            or :class:`~branchgym.envs.handle.EnvHandle`; every episode gets its own.
        branch: a :class:`~branchgym.algorithms.config.BranchConfig` for tree rollouts
            (ARPO/AEPO branching, docs/algorithms.md#arpo); ``branch.n`` must equal the
            trainer's ``num_generations``, since each tree is one GRPO group. ``None``: flat.
        max_response_tokens: response budget per trajectory (model + observation tokens);
            default the trainer's ``max_completion_length``.
        call_limit: ARPO's per-trajectory tool-call limit (None: the env's own limits).
        max_rounds: cap on generation rounds.
        entropy_source: what the tree's branch rule reads (``"exact"`` or ``"topk"``).
        tool_workers: tool calls run at once (docs/rollout.md).
        seed: seeds the tree's branch decisions and the HF generator.
    """

    def __init__(
        self,
        make_env: Callable[[], Any],
        *,
        branch: Any = None,
        max_response_tokens: int | None = None,
        call_limit: int | None = None,
        max_rounds: int = 64,
        entropy_source: str = "exact",
        tool_workers: int | None = None,
        seed: int = 0,
    ) -> None:
        import numpy as np

        _require_trl()
        if not callable(make_env):
            raise ConfigError(f"make_env={make_env!r} must be a callable that returns an env or an EnvHandle.")
        if entropy_source not in ("exact", "topk"):
            raise ConfigError(f"entropy_source={entropy_source!r}; use 'exact' or 'topk'.")
        self.make_env = make_env
        self.branch = branch
        self.max_response_tokens = max_response_tokens
        self.call_limit = call_limit
        self.max_rounds = max_rounds
        self.entropy_source = entropy_source
        self.tool_workers = tool_workers
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.last_batch: Any = None
        """The :class:`~branchgym.algorithms.rollout.RolloutBatch` of the latest call."""
        self._generators: dict[int, TrainerGenerator] = {}

    # -- TRL entry point -----------------------------------------------------------------------

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, list[Any]]:
        from branchgym.agents.policy import SamplingParams

        mode = "train" if trainer.model.training else "eval"
        g = trainer.num_generations if mode == "train" else trainer.num_generations_eval
        task_ids = group_task_ids(prompts, g)
        params = SamplingParams(
            max_new_tokens=trainer.max_completion_length,
            temperature=float(trainer.temperature),
            top_p=float(trainer.top_p),
            top_k=int(trainer.top_k or 0),
        )
        budget = self.max_response_tokens or trainer.max_completion_length
        gen = self._generators.setdefault(id(trainer), TrainerGenerator(trainer, seed=self.seed))
        if getattr(trainer, "use_vllm", False):
            with _vllm_awake(trainer):
                batch = self._play(gen.bind(), task_ids, g, params, budget)
        else:
            from trl.models import unwrap_model_for_generation

            with unwrap_model_for_generation(
                trainer.model_wrapped, trainer.accelerator,
                gather_deepspeed3_params=trainer.args.ds3_gather_for_generation,
            ) as model:
                batch = self._play(gen.bind(model), task_ids, g, params, budget)
        self.last_batch = batch
        _log_metrics(trainer, mode, batch)
        rows = batch.trajectories
        return {
            "prompt_ids": [list(t.prompt_ids) for t in rows],
            "completion_ids": [list(t.response_ids) for t in rows],
            "logprobs": [list(t.logprobs) for t in rows],
            "env_mask": [list(t.loss_mask) for t in rows],
            "env_reward": [float(t.reward) for t in rows],
            "num_tool_calls": [t.num_tool_calls for t in rows],
        }

    def _play(self, generator: Any, task_ids: list[str], g: int, params: Any, budget: int) -> Any:
        from branchgym.algorithms.rollout import flat_rollout, tree_rollout

        common = dict(max_response_tokens=budget, call_limit=self.call_limit, max_rounds=self.max_rounds,
                      entropy_source=self.entropy_source, tool_workers=self.tool_workers)
        if self.branch is None:
            return flat_rollout(self.make_env, generator, task_ids, params, group_size=g, **common)
        if self.branch.n != g:
            raise ConfigError(
                f"branch.n={self.branch.n} but the trainer's num_generations is {g}: each tree is one GRPO "
                f"group, so set GRPOConfig(num_generations={self.branch.n}) or BranchConfig(n={g})."
            )
        if self.entropy_source == "topk":
            params = params.replace(logprobs_topk=10)
        return tree_rollout(self.make_env, generator, task_ids, params, branch=self.branch, rng=self.rng, **common)


def group_task_ids(prompts: Sequence[Any], g: int) -> list[str]:
    """One task id per run of ``g`` equal prompts; a clear error when the runs are broken.

    A prompt is a task id (:func:`task_dataset`) or a chat whose last message's content is one.
    """
    if len(prompts) % g:
        raise ConfigError(
            f"rollout_func got {len(prompts)} prompts, not a multiple of num_generations={g}: a GRPO group "
            "(a tree, for tree rollouts) must stay on one process. Make per_device_train_batch_size × "
            "steps_per_generation a multiple of num_generations."
        )
    ids = [_task_id(p) for p in prompts]
    out = []
    for s in range(0, len(ids), g):
        run = set(ids[s : s + g])
        if len(run) != 1:
            raise ConfigError(
                f"prompts {s}..{s + g - 1} hold {sorted(run)}, not one task repeated num_generations={g} "
                "times; the rollout plays each group as one task (TRL's RepeatSampler orders them so)."
            )
        out.append(ids[s])
    return out


def _task_id(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt and isinstance(prompt[-1], dict) and isinstance(prompt[-1].get("content"), str):
        return prompt[-1]["content"]
    raise ConfigError(
        f"prompt {str(prompt)[:80]!r} is not a task id; build the dataset with "
        "branchgym.integrations.trl.task_dataset(task_ids) (its 'prompt' column holds task ids)."
    )


def _log_metrics(trainer: Any, mode: str, batch: Any) -> None:
    """The rollout's own counters (docs/metrics.md) next to TRL's metrics."""
    store = getattr(trainer, "_metrics", None)
    if store is None:
        return
    for key, value in batch.metrics().items():
        if key.startswith(("rollout/tool_calls", "rollout/answered_frac", "rollout/clone")):
            store[mode][key].append(float(value))
