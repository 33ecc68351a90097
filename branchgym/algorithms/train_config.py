"""``TrainConfig``: one frozen, validated config for ``branchgym train``, with a preset per algorithm.

Precedence: the algorithm's preset, then a YAML file (a mapping of field names), then
``--set key=value`` overrides (``key`` may be dotted into ``advantage_params``, ``loss_params``
or ``branching``: ``--set loss_params.clip_high=0.28 --set branching.n=8``). Values are YAML
scalars (``1e-6``, ``true``, ``null``).

The presets come from the part-1 configs (:mod:`branchgym.algorithms.config`): each names an
advantage estimator and a policy loss of the registries, with their hyper-parameters, and the
tree-rollout algorithms a :class:`BranchConfig`; the trainer calls
``ADVANTAGES.get(cfg.advantage)(inputs, **cfg.advantage_params)`` and
``POLICY_LOSSES.get(cfg.loss)(inputs, **cfg.loss_params)`` and never branches on the name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from branchgym.algorithms.config import BranchConfig
from branchgym.errors import ConfigError

__all__ = ["TrainConfig", "PRESETS", "preset", "load_train_config", "parse_sets"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run reads. Field docstrings are the reference (docs/metrics.md for metrics)."""

    algo: str = "grpo"
    """preset name (grpo, dapo, dr_grpo, rloo, arpo, aepo, empg, gppo, cispo, clip_cov, kl_cov, high_entropy)."""
    env: str = "WebSearch-Offline-v0"
    """a Gymnasium id, or ``"package.module:factory"`` returning an env."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """keyword arguments for ``gym.make`` / the factory (``split`` is set from ``split``)."""
    split: str = "train"
    """split the training prompts are drawn from."""
    model: str = ""
    """directory of a Hugging Face causal LM (e.g. from ``branchgym.agents.tiny.build``)."""
    out: str = "runs/train"
    """run directory: metrics.jsonl, TensorBoard events, checkpoints/, plots/, final/."""
    seed: int = 0
    steps: int = 10
    """RL steps (one rollout batch + its update each)."""
    prompts_per_step: int = 4
    rollout: Literal["flat", "tree"] = "flat"
    group_size: int = 8
    """G, trajectories per prompt of a flat rollout (a tree has ``branching.n``)."""
    branching: BranchConfig | None = None
    """the tree's branch rule and budget (tree rollouts only)."""
    premonitor: bool = False
    """AEPO entropy pre-monitoring of the global count m (Q8 ``enable_dynamic_rollouts``)."""
    premonitor_beta: float = 0.5
    m_rounding: Literal["code_floor_plus_one", "paper_round"] = "code_floor_plus_one"
    call_limit: int | None = 3
    """ARPO's per-trajectory tool-call limit (None: the env's own limits only)."""
    entropy_source: Literal["topk", "exact"] = "topk"
    """H_seg from top-k logprobs (ARPO, k=10) or from exact token entropies."""
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    """tokens per generated segment."""
    max_response_tokens: int = 1024
    """response budget per trajectory (model + tool tokens)."""
    advantage: str = "grpo"
    advantage_params: dict[str, Any] = field(default_factory=dict)
    loss: str = "ppo_clip"
    loss_params: dict[str, Any] = field(default_factory=dict)
    overlong_buffer_frac: float | None = None
    """DAPO overlong shaping with L_max = max_response_tokens, L_buf = frac·L_max (DAPO: 4096/20480 = 0.2)."""
    dynamic_sampling: bool = False
    """DAPO: drop groups whose rewards are all equal and roll out more prompts until
    ``prompts_per_step`` groups with a reward spread are collected (or ``max_gen_batches``)."""
    max_gen_batches: int = 4
    """DAPO dynamic sampling: at most this many rollout batches of ``prompts_per_step`` prompts
    per step (verl's ``max_num_gen_batches``); if they are spent the step trains on the groups
    it has (verl raises instead) and logs ``train/gen_batches``."""
    ref_model: bool = False
    """keep a frozen copy of the initial model for ref_logp (needed when loss_params.kl_coef > 0)."""
    lr: float = 1e-6
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    warmup_steps: int = 0
    lr_schedule: Literal["constant", "linear", "cosine"] = "constant"
    ppo_epochs: int = 1
    mini_batches: int = 1
    """optimizer steps per epoch (the batch is split into this many mini-batches)."""
    micro_batch_size: int = 16
    """rows per forward/backward (gradient accumulation within a mini-batch)."""
    checkpoint_every: int = 5
    keep_checkpoints: int = 2
    rollout_backend: Literal["hf", "vllm"] = "hf"
    """generate with the trained HF model, or a vLLM engine whose weights are synced after each update."""
    vllm_kwargs: dict[str, Any] = field(default_factory=dict)
    """extra ``VLLMPolicy`` arguments (``max_model_len``, ``enforce_eager``, ``kv_cache_gib``, ...);
    the engine's dtype follows the trained model's so the PPO ratio compares like with like."""
    device: str = "cpu"
    threads: int | None = None
    """torch intra-op threads (None: torch's default)."""
    tensorboard: bool = True
    plots: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        if self.algo not in PRESETS:
            raise ConfigError(f"algo={self.algo!r} has no preset; use one of {sorted(PRESETS)}.")
        if self.rollout not in ("flat", "tree"):
            raise ConfigError(f"rollout={self.rollout!r}; use 'flat' or 'tree'.")
        if self.rollout == "tree" and self.branching is None:
            raise ConfigError("rollout='tree' needs branching (a BranchConfig); the arpo/aepo presets set it.")
        if isinstance(self.branching, Mapping):
            object.__setattr__(self, "branching", BranchConfig(**self.branching))
        for name in ("steps", "prompts_per_step", "group_size", "max_new_tokens", "max_response_tokens",
                     "ppo_epochs", "mini_batches", "micro_batch_size", "checkpoint_every", "keep_checkpoints",
                     "max_gen_batches"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"TrainConfig.{name}={v!r} must be an int ≥ 1.")
        if self.call_limit is not None and self.call_limit < 0:
            raise ConfigError(f"TrainConfig.call_limit={self.call_limit!r} must be ≥ 0 or null.")
        if not self.lr > 0:
            raise ConfigError(f"TrainConfig.lr={self.lr!r} must be > 0 (ARPO/AEPO use 1e-6).")
        if self.max_grad_norm <= 0:
            raise ConfigError(f"TrainConfig.max_grad_norm={self.max_grad_norm!r} must be > 0 (1.0 is usual).")
        if self.lr_schedule not in ("constant", "linear", "cosine"):
            raise ConfigError(f"lr_schedule={self.lr_schedule!r}; use constant, linear or cosine.")
        if self.entropy_source not in ("topk", "exact"):
            raise ConfigError(f"entropy_source={self.entropy_source!r}; use 'topk' or 'exact'.")
        if self.rollout_backend not in ("hf", "vllm"):
            raise ConfigError(f"rollout_backend={self.rollout_backend!r}; use 'hf' or 'vllm'.")
        if self.overlong_buffer_frac is not None and not 0 < self.overlong_buffer_frac < 1:
            raise ConfigError(f"overlong_buffer_frac={self.overlong_buffer_frac!r} must be in (0, 1) or null.")
        if self.loss_params.get("kl_coef", 0.0) and not self.ref_model:
            raise ConfigError(
                f"loss_params.kl_coef={self.loss_params['kl_coef']!r} needs a reference model; "
                "add --set ref_model=true (or set kl_coef=0)."
            )
        from branchgym.algorithms.registry import ADVANTAGES, POLICY_LOSSES

        ADVANTAGES.get(self.advantage)  # unknown names raise with the closest match
        POLICY_LOSSES.get(self.loss)
        if self.rollout == "tree" and self.branching is not None and self.prompts_per_step * self.branching.n < 2:
            raise ConfigError("a tree rollout needs at least 2 trajectories per step.")

    @property
    def tree_size(self) -> int:
        """Trajectories per prompt: G (flat) or n (tree)."""
        return self.branching.n if self.rollout == "tree" and self.branching is not None else self.group_size

    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-serialisable form (round-trips through :func:`load_train_config`)."""
        d = dataclasses.asdict(self)
        return d


def _grpo_like(cfg: Any, *, group_size: int) -> dict[str, Any]:
    params = dict(cfg.loss_params())
    return {
        "rollout": "flat", "group_size": group_size,
        "advantage": cfg.advantage_name, "advantage_params": dict(cfg.advantage_params()),
        "loss": cfg.loss_name, "loss_params": params,
        "ref_model": bool(params.get("kl_coef", 0.0)),
    }


def _tree(cfg: Any) -> dict[str, Any]:
    return {
        "rollout": "tree", "branching": cfg.branching, "call_limit": cfg.call_limit,
        "advantage": cfg.advantage_name, "advantage_params": dict(cfg.advantage_params()),
        "loss": cfg.loss_name, "loss_params": dict(cfg.loss_params()),
    }


def _build_presets() -> dict[str, dict[str, Any]]:
    from branchgym.algorithms.config import AEPOConfig, ARPOConfig, EMPGConfig, EntropyMaskConfig, GRPOConfig

    grpo = GRPOConfig.code_compat()
    dapo = GRPOConfig.dapo()
    aepo = AEPOConfig()
    out: dict[str, dict[str, Any]] = {
        "grpo": _grpo_like(grpo, group_size=16),
        "grpo_paper": _grpo_like(GRPOConfig.paper(), group_size=16),
        "dapo": {**_grpo_like(dapo, group_size=16), "overlong_buffer_frac": 0.2, "dynamic_sampling": True},
        "dr_grpo": _grpo_like(GRPOConfig.dr_grpo(), group_size=8),
        "rloo": {**_grpo_like(grpo, group_size=16), "advantage": "rloo", "advantage_params": {}},
        "arpo": _tree(ARPOConfig()),
        "arpo_paper": _tree(ARPOConfig.paper()),
        "aepo": {**_tree(aepo), "premonitor": aepo.enable_dynamic_rollouts,
                 "premonitor_beta": aepo.premonitor_beta, "m_rounding": aepo.m_rounding},
        "aepo_paper": {**_tree(AEPOConfig.paper()), "premonitor": True, "m_rounding": "paper_round"},
        "empg": {**_grpo_like(EMPGConfig.code_compat().base, group_size=16),
                 "advantage": "empg", "advantage_params": dict(EMPGConfig.code_compat().advantage_params())},
        "high_entropy": {**_grpo_like(EntropyMaskConfig().base, group_size=16), "loss": "high_entropy_mask",
                         "loss_params": dict(EntropyMaskConfig().loss_params())},
    }
    base = out["grpo"]
    out["gppo"] = {**base, "loss": "gppo", "loss_params": {"clip_low": 0.2, "clip_high": 0.2, "clip_ratio_c": 3.0}}
    out["cispo"] = {**base, "loss": "cispo", "loss_params": {"clip_low": 1.0, "clip_high": 0.28}}
    out["clip_cov"] = {**base, "loss": "clip_cov", "loss_params": {}}
    out["kl_cov"] = {**base, "loss": "kl_cov", "loss_params": {}}
    for name, fields_ in out.items():
        fields_["algo"] = name
    return out


class _Presets(Mapping[str, dict[str, Any]]):
    """Lazily built preset table (building it imports the part-1 configs only)."""

    _table: dict[str, dict[str, Any]] | None = None
    _NAMES = ("grpo", "grpo_paper", "dapo", "dr_grpo", "rloo", "arpo", "arpo_paper", "aepo", "aepo_paper",
              "empg", "high_entropy", "gppo", "cispo", "clip_cov", "kl_cov")

    def _get(self) -> dict[str, dict[str, Any]]:
        if self._table is None:
            type(self)._table = _build_presets()
        assert self._table is not None
        return self._table

    def __getitem__(self, key: str) -> dict[str, Any]:
        return self._get()[key]

    def __iter__(self):  # type: ignore[override]
        return iter(self._NAMES)

    def __len__(self) -> int:
        return len(self._NAMES)

    def __contains__(self, key: object) -> bool:
        return key in self._NAMES


PRESETS: Mapping[str, dict[str, Any]] = _Presets()
"""algo name -> TrainConfig fields of its preset."""


def preset(algo: str, **overrides: Any) -> TrainConfig:
    """The preset config of ``algo`` with ``overrides`` applied (``preset("aepo", steps=3)``)."""
    return load_train_config(algo, overrides=overrides)


def parse_sets(items: Sequence[str]) -> dict[str, Any]:
    """``["lr=1e-5", "branching.n=8"]`` -> ``{"lr": 1e-5, "branching.n": 8}`` (YAML scalars)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r} is not key=value; e.g. --set lr=1e-5 or --set branching.n=8.")
        out[key.strip()] = _scalar(yaml.safe_load(raw)) if raw.strip() else ""
    return out


def _scalar(value: Any) -> Any:
    """YAML 1.1 reads ``1e-6`` as a string; numbers written that way become floats."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if isinstance(value, dict):
        return {k: _scalar(v) for k, v in value.items()}
    return value


def _merge(fields_: dict[str, Any], updates: Mapping[str, Any], origin: str) -> None:
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    for key, value in updates.items():
        head, _, sub = str(key).partition(".")
        if head not in names:
            import difflib

            close = difflib.get_close_matches(head, sorted(names), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{origin}: unknown TrainConfig field {head!r}.{hint} Fields: {sorted(names)}.")
        if sub:
            current = fields_.get(head)
            if isinstance(current, BranchConfig):
                current = dataclasses.asdict(current)
            if current is None:
                current = {}
            if not isinstance(current, dict):
                raise ConfigError(f"{origin}: {head!r} is not a mapping, so {key!r} cannot set a sub-key.")
            fields_[head] = {**current, sub: value}
        elif head in ("advantage_params", "loss_params", "env_kwargs") and isinstance(value, Mapping):
            fields_[head] = {**(fields_.get(head) or {}), **value}
        else:
            fields_[head] = value


def load_train_config(
    algo: str, config_file: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> TrainConfig:
    """Preset of ``algo``, then the YAML file, then ``overrides`` (see the module docstring)."""
    if algo not in PRESETS:
        import difflib

        close = difflib.get_close_matches(algo, list(PRESETS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown algorithm {algo!r}.{hint} Presets: {sorted(PRESETS)}.")
    fields_ = {k: (dict(v) if isinstance(v, dict) else v) for k, v in PRESETS[algo].items()}
    if config_file is not None:
        import yaml

        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist; pass a YAML mapping of TrainConfig fields.")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: expected a YAML mapping of TrainConfig fields, got {type(data).__name__}.")
        data = {k: _scalar(v) for k, v in data.items() if k != "algo"}
        _merge(fields_, data, str(path))
    _merge(fields_, dict(overrides or {}), "--set")
    fields_["algo"] = algo
    if isinstance(fields_.get("branching"), Mapping):
        fields_["branching"] = BranchConfig(**fields_["branching"])
    try:
        return TrainConfig(**fields_)
    except TypeError as e:
        raise ConfigError(f"bad TrainConfig value: {e}") from e
