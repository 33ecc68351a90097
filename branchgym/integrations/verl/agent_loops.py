"""verl agent loops ``branchgym`` (flat) and ``branchgym_tree`` (entropy-branched tree).

Both are registered in verl's agent-loop registry when verl loads branchgym's plugin (``import
verl``). They play episodes with branchgym's one rollout engine: :func:`~branchgym.algorithms.
rollout.flat_rollout` / :func:`~branchgym.algorithms.rollout.tree_rollout` (their round loop is
:func:`branchgym.agents.loop.run_round`) over a
:class:`~branchgym.integrations.verl.server_generator.ServerGenerator` that sends every
generation to verl's rollout replicas. See docs/integrations/verl.md#agent-loops.

Dataset row (what ``branchgym verl-data`` writes; verl passes every non-tensor column to ``run``):

- ``agent_name``: ``"branchgym"`` or ``"branchgym_tree"``;
- ``env_id``: a Gymnasium id (``"CodeExec-Offline-v0"``) or ``"package.module:factory"``;
- ``task_id``: the task of that env's split to play;
- ``env_kwargs`` (optional): keyword arguments of ``gym.make`` (a dict, or its JSON text);
  ``split`` among them picks the split (default ``"train"``);
- ``split`` (optional): the split, when ``env_kwargs`` does not give it (both: they must agree).

These fields may be top-level columns or keys of the row's ``extra_info`` dict (a top-level
column wins).

Knobs (a ``branchgym:`` section of the trainer config, e.g. ``+branchgym.entropy=topk``, or keys
next to ``_target_`` in an ``agent_loop_config_path`` file; the latter win): see
:class:`LoopSettings`.

What a sample returns. ``branchgym``: one ``AgentLoopOutput``. ``branchgym_tree``: a list of
``branch.n`` ``AgentLoopOutput`` (the tree's trajectories, rows in tree order). Each carries the
exact token ids (prompt from the chat template over the env's messages; response = model tokens,
``response_mask`` 1, and observation tokens, mask 0), the replica's log-probs, ``reward_score``
= the env's episode reward, and ``extra_fields``: ``branchgym_error`` (None, or the error), env
and task ids, ``branchgym_reward``, ``branchgym_end_reason``, ``branchgym_tool_calls``,
``branchgym_entropy_kind`` and ``branchgym_segment_entropy`` (per model segment: the mean of the
tokens' entropies, i.e. −mean log p(sampled) with ``entropy="sampled"``), and the tree:
``branchgym_tree_id``, ``branchgym_row``, ``branchgym_parent_row`` (-1 for a global),
``branchgym_branch_point`` (response index where the row left its parent).

Bad input (unknown env id, task id or protocol, bad ``env_kwargs``, an env that raises, a prompt
longer than ``rollout.prompt_length``) never kills the worker: the sample ends with one output of
zero weight (``response_mask`` all 0, reward 0) whose ``extra_fields["branchgym_error"]`` says
what went wrong and how to fix it. In a tree, a single trajectory whose env raised gets zero
weight; the others keep theirs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from abc import abstractmethod
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from branchgym.errors import ConfigError
from branchgym.fields import ranged
from branchgym.integrations.verl.server_generator import ENTROPY_KINDS, ServerGenerator

try:
    from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopMetrics, AgentLoopOutput, register
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        f"branchgym's verl agent loops need verl ({exc}); pip install 'branchgym[verl]' and "
        "pip install --no-deps verl==0.9.1"
    ) from exc

__all__ = ["LoopSettings", "SampleSpec", "BranchgymAgentLoop", "BranchgymTreeAgentLoop", "AGENT_LOOP_NAMES"]

AGENT_LOOP_NAMES = ("branchgym", "branchgym_tree")
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoopSettings:
    """Knobs of the ``branchgym`` / ``branchgym_tree`` agent loops."""

    max_response_tokens: int | None = None
    """Response budget per trajectory (model + observation tokens); default and maximum
    ``rollout.response_length``."""
    max_new_tokens: int | None = None
    """Tokens per generation call (one segment); default: the trajectory's remaining budget."""
    call_limit: int | None = None
    """ARPO's per-trajectory tool-call limit (None: only the env's own limits)."""
    max_rounds: int = ranged(64, ge=1)
    """Safety cap on generation rounds per sample."""
    tool_workers: int | None = None
    """Tool calls of one sample run at once (default ``min(32, live trajectories)``)."""
    entropy: Literal["sampled", "topk"] = ranged("sampled", choices=("sampled", "topk"))
    """``sampled``: −log p of the sampled token (verl's replicas); ``topk``: exact entropy over
    top-k log-probs, for a replica returning ``extra_fields["top_logprobs"]``."""
    topk: int = ranged(10, ge=1)
    """k of ``entropy="topk"`` (ARPO: 10)."""
    entropy_tokens: int = ranged(20, ge=1)
    """Positions of a segment the branch rule reads (ARPO: 20)."""
    branch: dict[str, Any] = field(default_factory=dict)
    """``BranchConfig`` fields of the tree (``n``, ``initial``, ``weight``, ...); tree loop only."""
    seed: int | None = None
    """Seed of the tree's branch decisions (None: fresh randomness per sample)."""
    rollout_threads: int = ranged(256, ge=1)
    """Threads per worker process that run samples' engines (one per sample in flight)."""

    def __post_init__(self) -> None:
        from branchgym.fields import validate

        validate(self)
        for name in ("max_response_tokens", "max_new_tokens", "call_limit", "tool_workers"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 1):
                raise ConfigError(f"branchgym agent loop: {name}={v!r} must be an int >= 1 or None.")

    @classmethod
    def from_sources(cls, *sources: Mapping[str, Any] | None) -> LoopSettings:
        """Merge knob mappings (later ones win); an unknown knob is an error naming the known ones."""
        known = {f.name for f in fields(cls)}
        merged: dict[str, Any] = {}
        for src in sources:
            for k, v in dict(src or {}).items():
                if k not in known:
                    raise ConfigError(f"unknown branchgym agent-loop knob {k!r}; known: {sorted(known)}")
                merged[k] = _plain(v)
        return cls(**merged)

    def branch_config(self) -> Any:
        from branchgym.algorithms.config import BranchConfig

        try:
            return BranchConfig(**self.branch)
        except TypeError as exc:
            raise ConfigError(f"branchgym_tree: branch={self.branch!r} is not a BranchConfig ({exc}); "
                              "give its fields, e.g. {n: 8, initial: 2}") from exc


def _plain(v: Any) -> Any:
    """OmegaConf containers and numpy scalars/0-d arrays as plain Python values."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(v, (DictConfig, ListConfig)):
            return OmegaConf.to_container(v, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
        return v.item()
    return v


@dataclass(frozen=True)
class SampleSpec:
    """The env and task of one dataset row (see the module docstring for the columns)."""

    env_id: str
    task_id: str
    env_kwargs: dict[str, Any]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> SampleSpec:
        extra = _plain(row.get("extra_info"))
        extra = extra if isinstance(extra, Mapping) else {}

        def get(name: str) -> Any:
            v = _plain(row.get(name))
            return _plain(extra.get(name)) if v is None else v

        env_id, task_id, kw = get("env_id"), get("task_id"), get("env_kwargs")
        if not isinstance(env_id, str) or not env_id:
            raise ConfigError(f"the row has no env_id (got {env_id!r}); `branchgym verl-data` writes env_id, "
                              "task_id and env_kwargs into each row's extra_info")
        if task_id is None or isinstance(task_id, (dict, list)) or str(task_id) == "":
            raise ConfigError(f"the row for env {env_id!r} has no task_id (got {task_id!r}); give the id "
                              "of a task of that env's split")
        if kw is None:
            kw = {}
        elif isinstance(kw, str):
            try:
                kw = json.loads(kw) if kw.strip() else {}
            except json.JSONDecodeError as exc:
                raise ConfigError(f"env_kwargs {kw!r} is not valid JSON ({exc}); give a JSON object") from exc
        if not isinstance(kw, Mapping):
            raise ConfigError(f"env_kwargs must be a dict (or JSON object), got {kw!r}")
        kw = dict(kw)
        split = get("split")
        if split is not None and kw.setdefault("split", split) != split:
            raise ConfigError(f"the row says split={split!r} but its env_kwargs say split={kw['split']!r}; "
                              "give the split once")
        return cls(env_id, str(task_id), kw)

    def make_env_factory(self) -> Any:
        from branchgym.algorithms.trainer import make_env_factory

        kw = dict(self.env_kwargs)
        return make_env_factory(self.env_id, kw, str(kw.pop("split", "train")))


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _rollout_pool(size: int) -> ThreadPoolExecutor:
    """The worker process's threads for samples' engines (made once, by the first sample)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=size, thread_name_prefix="branchgym-sample")
        return _POOL


class _BranchgymLoopBase(AgentLoopBase):
    """What the flat and tree loops share: settings, the generator, outputs and error rows."""

    tree = False

    def __init__(self, trainer_config: Any, server_manager: Any, tokenizer: Any, processor: Any, dataset_cls: Any,
                 data_config: Any, hf_model_type: str | None = None, **kwargs: Any) -> None:
        super().__init__(trainer_config, server_manager, tokenizer, processor, dataset_cls, data_config,
                         hf_model_type=hf_model_type)
        knobs = {k: v for k, v in kwargs.items() if k in {f.name for f in fields(LoopSettings)}}
        self.settings = LoopSettings.from_sources(self.config.get("branchgym"), knobs)
        self.response_length = int(self.rollout_config.response_length)
        self.prompt_length = int(self.rollout_config.prompt_length)
        budget = self.settings.max_response_tokens
        if budget is not None and budget > self.response_length:
            raise ConfigError(f"branchgym agent loop: max_response_tokens={budget} exceeds "
                              f"rollout.response_length={self.response_length}; lower it or raise the other")
        self.budget = budget or self.response_length

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        spec: SampleSpec | None = None
        t0 = time.perf_counter()
        try:
            spec = SampleSpec.from_row(kwargs)
            gen = ServerGenerator(
                self.server_manager, self.tokenizer, loop, base_params=sampling_params,
                entropy=self.settings.entropy, topk=self.settings.topk,
                chat_template_kwargs=self.apply_chat_template_kwargs,
            )
            batch = await loop.run_in_executor(_rollout_pool(self.settings.rollout_threads), self._rollout, spec,
                                               gen, sampling_params)
            outputs = self._outputs(batch, spec, gen)
        except Exception as exc:  # this sample's failure, never the worker's
            logger.warning("branchgym agent loop: sample failed: %s: %s", type(exc).__name__, exc)
            outputs = [self._error_output(kwargs, spec, exc, time.perf_counter() - t0)]
        return outputs if self.tree else outputs[0]

    # -- the rollout (runs in a thread of the worker's pool) ------------------------------

    def _params(self, sampling_params: dict[str, Any]) -> Any:
        from branchgym.agents.policy import SamplingParams

        top_k = int(sampling_params.get("top_k", -1) or -1)
        return SamplingParams(
            max_new_tokens=min(self.settings.max_new_tokens or self.budget, self.budget),
            temperature=float(sampling_params.get("temperature", 1.0)),
            top_p=float(sampling_params.get("top_p", 1.0)),
            top_k=max(top_k, 0),
            logprobs_topk=self.settings.topk if self.settings.entropy == "topk" else 0,
        )

    @abstractmethod
    def _rollout(self, spec: SampleSpec, gen: ServerGenerator, sampling_params: dict[str, Any]) -> Any:
        """The sample's rollout batch: one flat episode or one tree (each loop's own engine call)."""

    @property
    def _entropy_source(self) -> Literal["exact", "topk"]:
        return "topk" if self.settings.entropy == "topk" else "exact"

    # -- outputs ----------------------------------------------------------------------------

    def _outputs(self, batch: Any, spec: SampleSpec, gen: ServerGenerator) -> list[AgentLoopOutput]:
        tree_id = uuid.uuid4().hex
        seconds = batch.seconds
        out = []
        for row, traj in enumerate(batch.trajectories):
            if len(traj.prompt_ids) > self.prompt_length:
                raise ConfigError(f"the prompt of task {spec.task_id!r} has {len(traj.prompt_ids)} tokens, more than "
                                  f"rollout.prompt_length={self.prompt_length}; raise data.max_prompt_length")
            n = min(len(traj.response_ids), self.response_length)
            error = traj.info.get("env_error") if traj.end_reason == "env_error" else None
            mask = [0] * n if error else list(traj.loss_mask[:n])
            reward = 0.0 if error else float(traj.reward)
            seg_h = []
            for seg in traj.segments:
                ents = traj.entropies[seg.start:seg.end]
                seg_h.append(sum(ents) / len(ents) if ents else 0.0)
            extra = {
                **self._ids_fields(spec, error),
                "branchgym_reward": reward,
                "branchgym_end_reason": traj.end_reason,
                "branchgym_tool_calls": traj.num_tool_calls,
                "branchgym_segment_entropy": seg_h,
                "branchgym_tree_id": tree_id,
                "branchgym_row": row,
                "branchgym_parent_row": int(batch.parent_rows[row]),
                "branchgym_branch_point": int(batch.branch_points[row]),
                "branchgym_response_cut": len(traj.response_ids) - n,
            }
            if self.tree:
                # verl 0.9.1's v1 worker (trainer/ppo/v1/agent_loop_tq.py:173-175) copies the last
                # output's reward_score and extra_fields["reward_extra_info"] onto the earlier ones
                # of a list (it reads a list as one trajectory's turns): without the key it raises.
                extra["reward_extra_info"] = {}
            out.append(AgentLoopOutput(
                prompt_ids=list(traj.prompt_ids), response_ids=list(traj.response_ids[:n]), response_mask=mask,
                response_logprobs=[float(x) for x in traj.logprobs[:n]], reward_score=reward,
                num_turns=1 + len(traj.segments) + sum(1 for s in traj.steps if s.obs_span[1] > s.obs_span[0]),
                metrics=AgentLoopMetrics(generate_sequences=seconds.get("generation", 0.0),
                                         tool_calls=seconds.get("tools", 0.0), num_preempted=gen.preempted),
                extra_fields=extra,
            ))
        return out

    def _ids_fields(self, spec: SampleSpec | None, error: str | None) -> dict[str, Any]:
        return {
            "branchgym_error": error,
            "branchgym_env_id": None if spec is None else spec.env_id,
            "branchgym_task_id": None if spec is None else spec.task_id,
            "branchgym_entropy_kind": ENTROPY_KINDS[self.settings.entropy],
        }

    def _error_output(self, row: Mapping[str, Any], spec: SampleSpec | None, exc: BaseException,
                      seconds: float) -> AgentLoopOutput:
        """A zero-weight row (mask all 0, reward 0) whose ``branchgym_error`` names the problem."""
        message = f"{type(exc).__name__}: {exc}"
        eos = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
        prompt = [eos]
        raw = _plain(row.get("raw_prompt"))
        if raw is not None:
            try:
                msgs = [dict(m) for m in raw]
                prompt = self.tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True,
                                                            return_dict=False) or [eos]
                if isinstance(prompt, dict) or hasattr(prompt, "input_ids"):
                    prompt = prompt["input_ids"]
                prompt = [int(t) for t in prompt][-self.prompt_length:]
            except Exception:  # the error row still goes out, with a one-token prompt
                prompt = [eos]
        extra = {
            **self._ids_fields(spec, message),
            "branchgym_reward": 0.0, "branchgym_end_reason": "error", "branchgym_tool_calls": 0,
            "branchgym_segment_entropy": [], "branchgym_tree_id": uuid.uuid4().hex, "branchgym_row": 0,
            "branchgym_parent_row": -1, "branchgym_branch_point": 0, "branchgym_response_cut": 0,
        }
        return AgentLoopOutput(
            prompt_ids=prompt, response_ids=[eos], response_mask=[0], response_logprobs=[0.0], reward_score=0.0,
            num_turns=1, metrics=AgentLoopMetrics(generate_sequences=seconds), extra_fields=extra,
        )


@register("branchgym")
class BranchgymAgentLoop(_BranchgymLoopBase):
    """One env per sample, one flat episode (verl's ``rollout.n`` samples make the GRPO group)."""

    def _rollout(self, spec: SampleSpec, gen: ServerGenerator, sampling_params: dict[str, Any]) -> Any:
        from branchgym.algorithms.rollout import flat_rollout

        s = self.settings
        return flat_rollout(spec.make_env_factory(), gen, [spec.task_id], self._params(sampling_params),
                            group_size=1, max_response_tokens=self.budget, call_limit=s.call_limit,
                            max_rounds=s.max_rounds, entropy_source=self._entropy_source, tool_workers=s.tool_workers)


@register("branchgym_tree")
class BranchgymTreeAgentLoop(_BranchgymLoopBase):
    """One session grows an ARPO/AEPO tree of ``branch.n`` trajectories by cloning its env (the
    python sandbox is forked, in this worker); returns them all, as a list (set ``rollout.n=1``)."""

    tree = True

    def _rollout(self, spec: SampleSpec, gen: ServerGenerator, sampling_params: dict[str, Any]) -> Any:
        import numpy as np

        from branchgym.algorithms.rollout import tree_rollout

        s = self.settings
        return tree_rollout(spec.make_env_factory(), gen, [spec.task_id], self._params(sampling_params),
                            branch=s.branch_config(), rng=np.random.default_rng(s.seed),
                            max_response_tokens=self.budget, call_limit=s.call_limit, max_rounds=s.max_rounds,
                            entropy_source=self._entropy_source, entropy_tokens=s.entropy_tokens,
                            tool_workers=s.tool_workers)
