"""``TrainConfig``: one frozen, validated config for ``branchgym train``, with a preset per algorithm.

Precedence: the algorithm's preset, then a YAML file (a mapping of field names; its ``algo:``
may name the preset), then ``--set key=value`` overrides (``key`` may be dotted into
``advantage_params``, ``loss_params``, ``env_kwargs``, ``vllm_kwargs`` or ``branching``:
``--set loss_params.clip_high=0.28 --set branching.n=8``; a mapping is merged into the preset's).
Values are YAML scalars (``1e-6``, ``true``, ``null``).

The result is checked once, when it is built and before any model loads: every field against its
type and range (:mod:`branchgym.fields`), the ``*_params`` / ``*_kwargs`` mappings against the
signature of the function or env they are passed to. A bad value raises one
:class:`~branchgym.errors.ConfigError` line naming the field, the value and what is allowed.

The presets (:data:`PRESETS`, typed :class:`Preset` records written once) come from the part-1
configs (:mod:`branchgym.algorithms.config`): each names an advantage estimator and a policy loss
of the registries, with their hyper-parameters, and the tree-rollout algorithms a
:class:`BranchConfig`; the trainer calls
``ADVANTAGES.get(cfg.advantage)(inputs, **cfg.advantage_params)`` and
``POLICY_LOSSES.get(cfg.loss)(inputs, **cfg.loss_params)`` and never branches on the name.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from branchgym.algorithms.config import PARAM_SPECS, BranchConfig
from branchgym.algorithms.registry import ADVANTAGES, POLICY_LOSSES
from branchgym.errors import ConfigError
from branchgym.fields import Spec, build, check_keywords, ranged, validate

__all__ = ["TrainConfig", "Preset", "PRESETS", "preset", "load_train_config", "parse_sets"]

_DEVICE = re.compile(r"(cpu|mps|meta|(cuda|xpu)(:\d+)?)\Z")


def _is_device(value: str) -> bool:
    return bool(_DEVICE.match(value))


_VLLM_SPECS = {"max_model_len": Spec(ge=2), "kv_cache_gib": Spec(ge=1)}


def _check_env(env: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Resolve ``env`` (a Gymnasium id or ``module:factory``, imported now) and check ``kwargs``
    against the creator's keyword arguments, so a typo fails before any model loads."""
    import difflib
    import importlib
    import inspect

    if "split" in kwargs:
        raise ConfigError(f"TrainConfig.env_kwargs.split={kwargs['split']!r}: the split is TrainConfig.split; "
                          "set --set split=... instead.")
    extra: list[str] = []
    if ":" in env:
        module, _, attr = env.partition(":")
        try:
            creator = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"TrainConfig.env={env!r} cannot be loaded ({e}); give 'package.module:function'.") \
                from None
    else:
        import gymnasium as gym

        import branchgym.envs  # noqa: F401  (registers the branchgym ids)

        if env not in gym.registry:
            close = difflib.get_close_matches(env, list(gym.registry), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"TrainConfig.env={env!r} is not a registered env id.{hint} "
                              "List them with `branchgym list`, or give 'package.module:factory'.")
        entry = gym.spec(env).entry_point
        creator = gym.envs.registration.load_env_creator(entry) if isinstance(entry, str) else entry
        extra = [n for n, p in inspect.signature(gym.make).parameters.items() if p.kind is p.KEYWORD_ONLY
                 or (p.kind is p.POSITIONAL_OR_KEYWORD and n != "id")]
    target = creator.__init__ if inspect.isclass(creator) else creator
    label = f"env {env!r} ({getattr(creator, '__module__', '?')}:{getattr(creator, '__qualname__', '?')})"
    return check_keywords("TrainConfig.env_kwargs", target, label, kwargs, by_position=True, also=extra)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run reads. Field docstrings are the reference (docs/metrics.md for metrics).

    Every field is checked against its type and range when the config is built (before any model
    loads); ``advantage_params`` / ``loss_params`` against the keyword-only arguments of the
    registered ``advantage`` / ``loss`` function. A bad value raises one :class:`ConfigError` line
    naming the field, the value and what is allowed.
    """

    algo: str = ranged("grpo", choices=lambda: list(PRESETS))
    """preset name: one of :data:`PRESETS` (``branchgym train --help`` lists them)."""
    env: str = ranged("WebSearch-Offline-v0", check=bool, allowed="a non-empty env id or module:factory")
    """a Gymnasium id, or ``"package.module:factory"`` returning an env."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """keyword arguments for ``gym.make`` / the factory (``split`` is set from ``split``); their names
    and annotated types are checked against the env's constructor when the config is built."""
    split: str = ranged("train", check=bool, allowed="a non-empty split name")
    """split the training prompts are drawn from."""
    model: str = ""
    """directory of a Hugging Face causal LM (e.g. from ``branchgym.agents.tiny.build``)."""
    out: str = ranged("runs/train", check=bool, allowed="a non-empty directory path")
    """run directory: metrics.jsonl, TensorBoard events, checkpoints/, plots/, final/."""
    seed: int = ranged(0, ge=0, le=2**32 - 2, hint="numpy seeds are 32-bit")
    steps: int = ranged(10, ge=1)
    """RL steps (one rollout batch + its update each)."""
    prompts_per_step: int = ranged(4, ge=1)
    rollout: Literal["flat", "tree"] = "flat"
    group_size: int = ranged(8, ge=1)
    """G, trajectories per prompt of a flat rollout (a tree has ``branching.n``)."""
    branching: BranchConfig | None = None
    """the tree's branch rule and budget (tree rollouts only; a mapping is merged into the preset's)."""
    premonitor: bool = False
    """AEPO entropy pre-monitoring of the global count m (``enable_dynamic_rollouts``; tree only)."""
    premonitor_beta: float = ranged(0.5, ge=0.0)
    m_rounding: Literal["code_floor_plus_one", "paper_round"] = "code_floor_plus_one"
    call_limit: int | None = ranged(3, ge=0)
    """ARPO's per-trajectory tool-call limit (None: the env's own limits only)."""
    entropy_source: Literal["topk", "exact"] = "topk"
    """H_seg from top-k logprobs (ARPO, k=10) or from exact token entropies."""
    entropy_top_k: int = ranged(10, ge=1, hint="ARPO/AEPO request 10 logprobs per position")
    """top-k logprobs the rollout engine returns per position for H_seg (``entropy_source="topk"``)."""
    entropy_tokens: int = ranged(20, ge=1, le=20, hint="ARPO uses 20; a trajectory records 20 positions")
    """positions of a segment H_seg reads (tree rollouts, pre-monitoring), and k, the tokens of the
    paper's after-tool probe (``branching.entropy_probe="after_tool"``)."""
    initial_entropy_tokens: int = ranged(50, ge=1, hint="AEPO uses 50")
    """length of AEPO's H_root probe generation (``premonitor``; H_root reads its first ``entropy_tokens``)."""
    temperature: float = ranged(1.0, gt=0.0, hint="the update divides the logits by it; 1.0 is usual")
    top_p: float = ranged(1.0, gt=0.0, le=1.0)
    max_new_tokens: int = ranged(256, ge=1)
    """tokens per generated segment."""
    max_response_tokens: int = ranged(1024, ge=1)
    """response budget per trajectory (model + tool tokens)."""
    tool_workers: int | None = ranged(None, ge=1, hint="None: up to 32 at once; 1 runs calls one after another")
    """tool calls of a round run at once (``None``: ``min(32, live trajectories)``); see docs/rollout.md."""
    advantage: str = ranged("grpo", choices=lambda: list(ADVANTAGES))
    """a name in ``ADVANTAGES``; setting it to another estimator starts ``advantage_params`` from
    that function's defaults."""
    advantage_params: dict[str, Any] = field(default_factory=dict)
    """keyword arguments of the ``advantage`` function (checked against its signature)."""
    loss: str = ranged("ppo_clip", choices=lambda: list(POLICY_LOSSES))
    """a name in ``POLICY_LOSSES`` (as ``advantage``, a new loss starts from its defaults)."""
    loss_params: dict[str, Any] = field(default_factory=dict)
    """keyword arguments of the ``loss`` function (checked against its signature)."""
    overlong_buffer_frac: float | None = ranged(None, gt=0.0, lt=1.0, hint="DAPO uses 0.2")
    """DAPO overlong shaping with L_max = max_response_tokens, L_buf = frac·L_max (DAPO: 4096/20480 = 0.2)."""
    dynamic_sampling: bool = False
    """DAPO: drop groups whose rewards are all equal and roll out more prompts until
    ``prompts_per_step`` groups with a reward spread are collected (or ``max_gen_batches``)."""
    max_gen_batches: int = ranged(4, ge=1)
    """DAPO dynamic sampling: at most this many rollout batches of ``prompts_per_step`` prompts
    per step (verl's ``max_num_gen_batches``); if they are spent the step trains on the groups
    it has (verl raises instead) and logs ``train/gen_batches``."""
    ref_model: bool = False
    """keep a frozen copy of the initial model for ref_logp (needed when loss_params.kl_coef > 0)."""
    lr: float = ranged(1e-6, gt=0.0, le=1.0, hint="ARPO/AEPO use 1e-6")
    weight_decay: float = ranged(0.0, ge=0.0)
    max_grad_norm: float = ranged(1.0, gt=0.0, hint="1.0 is usual")
    warmup_steps: int = ranged(0, ge=0)
    lr_schedule: Literal["constant", "linear", "cosine"] = "constant"
    ppo_epochs: int = ranged(1, ge=1)
    mini_batches: int = ranged(1, ge=1)
    """optimizer steps per epoch (the batch is split into this many mini-batches)."""
    micro_batch_size: int = ranged(16, ge=1)
    """rows per forward/backward (gradient accumulation within a mini-batch)."""
    checkpoint_every: int = ranged(5, ge=1)
    keep_checkpoints: int = ranged(2, ge=1)
    rollout_backend: Literal["hf", "vllm"] = "hf"
    """generate with the trained HF model, or a vLLM engine whose weights are synced after each update."""
    vllm_kwargs: dict[str, Any] = field(default_factory=dict)
    """extra ``VLLMPolicy`` arguments (``max_model_len``, ``enforce_eager``, ``kv_cache_gib``, ...);
    the engine's dtype follows the trained model's so the PPO ratio compares like with like."""
    device: str = ranged("cpu", check=_is_device, allowed="'cpu', 'cuda', 'cuda:N' or 'mps'")
    threads: int | None = ranged(None, ge=1)
    """torch intra-op threads (None: torch's default)."""
    tensorboard: bool = True
    plots: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        validate(self)
        o = "TrainConfig"
        if self.rollout == "tree" and self.branching is None:
            raise ConfigError(f"{o}.rollout='tree' needs branching (a BranchConfig); the arpo/aepo presets set it.")
        if self.rollout == "flat" and (self.branching is not None or self.premonitor):
            what = "branching" if self.branching is not None else "premonitor=true"
            raise ConfigError(
                f"{o}.{what} is read by tree rollouts only, but rollout='flat' (algo={self.algo!r}); "
                "remove it or use a tree preset (arpo, aepo, ...)."
            )
        if self.vllm_kwargs and self.rollout_backend != "vllm":
            raise ConfigError(
                f"{o}.vllm_kwargs={self.vllm_kwargs!r} is read only with rollout_backend='vllm'; "
                "set rollout_backend=vllm or remove vllm_kwargs."
            )
        if self.vllm_kwargs:
            from branchgym.agents.vllm import VLLMPolicy  # imports no vLLM until an engine starts

            for key in ("model", "seed", "tokenizer"):
                if key in self.vllm_kwargs:
                    raise ConfigError(f"{o}.vllm_kwargs.{key} is set from TrainConfig (model, seed); remove it.")
            checked = check_keywords(f"{o}.vllm_kwargs", VLLMPolicy.__init__, "VLLMPolicy", self.vllm_kwargs,
                                     _VLLM_SPECS)
            object.__setattr__(self, "vllm_kwargs", checked)
        object.__setattr__(self, "env_kwargs", _check_env(self.env, self.env_kwargs))
        for kind, registry, name, params in (("advantage", ADVANTAGES, self.advantage, self.advantage_params),
                                             ("loss", POLICY_LOSSES, self.loss, self.loss_params)):
            fn = registry.get(name)
            label = f"{registry.kind} {name!r} ({getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', '?')})"
            checked = check_keywords(f"{o}.{kind}_params", fn, label, params, PARAM_SPECS)
            object.__setattr__(self, f"{kind}_params", checked)
        if self.loss_params.get("kl_coef", 0.0) and not self.ref_model:
            raise ConfigError(
                f"loss_params.kl_coef={self.loss_params['kl_coef']!r} needs a reference model; "
                "add --set ref_model=true (or set kl_coef=0)."
            )
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


@dataclass(frozen=True)
class Preset:
    """One ``--algo`` choice, typed: the advantage estimator and policy loss (names in the
    registries, with their keyword arguments), the rollout and its branch rule, and any other
    :class:`TrainConfig` fields it sets. Built from the part-1 configs
    (:mod:`branchgym.algorithms.config`); checked again as a whole when a ``TrainConfig`` is built.
    """

    name: str
    summary: str
    """one line for ``branchgym train --help`` and the README."""
    advantage: str = ranged(choices=lambda: list(ADVANTAGES))
    loss: str = ranged(choices=lambda: list(POLICY_LOSSES))
    advantage_params: dict[str, Any] = field(default_factory=dict)
    loss_params: dict[str, Any] = field(default_factory=dict)
    rollout: Literal["flat", "tree"] = "flat"
    branching: BranchConfig | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    """other TrainConfig fields (group size, DAPO sampling, AEPO pre-monitoring, ...)."""

    def __post_init__(self) -> None:
        validate(self, f"Preset[{self.name!r}]")

    def fields(self) -> dict[str, Any]:
        """The :class:`TrainConfig` fields this preset sets (fresh copies, safe to modify)."""
        out: dict[str, Any] = {
            "algo": self.name, "rollout": self.rollout, "advantage": self.advantage,
            "advantage_params": dict(self.advantage_params), "loss": self.loss,
            "loss_params": dict(self.loss_params),
        }
        if self.branching is not None:
            out["branching"] = self.branching
        out.update({k: (dict(v) if isinstance(v, dict) else v) for k, v in self.settings.items()})
        return out


def _from(name: str, summary: str, cfg: Any, **settings: Any) -> Preset:
    """A preset from a part-1 config: its estimator, loss and (tree algorithms) branch rule."""
    tree = hasattr(cfg, "branching")
    loss_params = dict(cfg.loss_params())
    base = {"call_limit": cfg.call_limit, "entropy_top_k": cfg.entropy_top_k,
            "entropy_tokens": cfg.entropy_tokens,
            "initial_entropy_tokens": getattr(cfg, "initial_entropy_tokens", 50)} if tree else \
        {"group_size": cfg.group_size, "ref_model": bool(loss_params.get("kl_coef", 0.0)),
         "dynamic_sampling": cfg.dynamic_sampling,
         # DAPO's L_buf is in tokens of its 20480-token budget; TrainConfig takes the fraction
         "overlong_buffer_frac": None if cfg.overlong_buffer is None else cfg.overlong_buffer / 20480}
    return Preset(
        name, summary, advantage=cfg.advantage_name, loss=cfg.loss_name,
        advantage_params=dict(cfg.advantage_params()), loss_params=loss_params,
        rollout="tree" if tree else "flat", branching=cfg.branching if tree else None,
        settings={**base, **settings},
    )


def _presets() -> list[Preset]:
    """Every algorithm preset, written once: CLI choices, ``--help`` and the README list come from
    here. Adding an algorithm = its math file (registered in ``registry.py``) + one entry here."""
    from branchgym.algorithms.config import AEPOConfig, ARPOConfig, EMPGConfig, EntropyMaskConfig, GRPOConfig

    grpo, dapo, aepo, empg, mask = (GRPOConfig.code_compat(), GRPOConfig.dapo(), AEPOConfig(),
                                    EMPGConfig.code_compat(), EntropyMaskConfig())
    return [
        _from("grpo", "GRPO as verl runs it (token-mean, no KL, G = 16)", grpo),
        _from("grpo_paper", "DeepSeekMath GRPO (k3 KL 0.04, seq-mean-token-mean)", GRPOConfig.paper()),
        _from("dapo", "DAPO: clip-higher, dynamic sampling, overlong shaping", dapo,
              overlong_buffer_frac=0.2, dynamic_sampling=True),
        _from("dr_grpo", "Dr. GRPO: no std scaling, constant-normalised token sum, G = 8",
              GRPOConfig.dr_grpo(), group_size=8),
        dataclasses.replace(_from("rloo", "RLOO leave-one-out baseline, PPO clip", grpo),
                            advantage="rloo", advantage_params={}),
        _from("arpo", "ARPO tree rollout (released code: lag-1 ΔH, soft attribution)", ARPOConfig()),
        _from("arpo_paper", "ARPO as the paper reads (ΔH after the tool result, hard attribution)",
              ARPOConfig.paper()),
        _from("aepo", "AEPO: ARPO + consecutive-branch penalty, entropy-balanced clipping", aepo,
              premonitor=aepo.enable_dynamic_rollouts, premonitor_beta=aepo.premonitor_beta,
              m_rounding=aepo.m_rounding),
        _from("aepo_paper", "AEPO as the paper reads (entropy pre-monitoring, per-path penalty)",
              AEPOConfig.paper(), premonitor=True, m_rounding="paper_round"),
        dataclasses.replace(_from("empg", "EMPG entropy-modulated step advantages on GRPO", empg.base),
                            advantage="empg", advantage_params=dict(empg.advantage_params())),
        # the paper's batch-wide top-20 %: one loss call per mini-batch; the code's: per micro-batch
        dataclasses.replace(_from("high_entropy", "80/20: DAPO loss on the top-20% entropy tokens", mask.base,
                                  **({"micro_batch_size": 1 << 20} if mask.entropy_mask_scope == "batch" else {})),
                            loss="high_entropy_mask", loss_params=dict(mask.loss_params())),
        dataclasses.replace(_from("gppo", "GPPO: gradient-preserving PPO clip", grpo), loss="gppo",
                            loss_params={"clip_low": 0.2, "clip_high": 0.2, "clip_ratio_c": 3.0}),
        dataclasses.replace(_from("cispo", "CISPO: clipped importance-sampling weights", grpo), loss="cispo",
                            loss_params={"clip_low": 1.0, "clip_high": 0.28}),
        dataclasses.replace(_from("clip_cov", "Clip-Cov: clip the high-covariance tokens", grpo),
                            loss="clip_cov", loss_params={}),
        dataclasses.replace(_from("kl_cov", "KL-Cov: KL penalty on the high-covariance tokens", grpo),
                            loss="kl_cov", loss_params={}),
    ]


PRESETS: Mapping[str, Preset] = {p.name: p for p in _presets()}
"""algo name -> its :class:`Preset` (in the order ``branchgym train --help`` lists them)."""


def preset(algo: str, **overrides: Any) -> TrainConfig:
    """The preset config of ``algo`` with ``overrides`` applied (``preset("aepo", steps=3)``)."""
    return load_train_config(algo, overrides=overrides)


_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)\Z")


def parse_sets(items: Sequence[str]) -> dict[str, Any]:
    """``["lr=1e-5", "branching.n=8"]`` -> ``{"lr": 1e-5, "branching.n": 8}`` (YAML scalars)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r} is not key=value; e.g. --set lr=1e-5 or --set branching.n=8.")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except RecursionError:
            raise ConfigError(f"--set {key.strip()}=...: the value is nested too deeply; give a scalar.") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"--set {key.strip()}={raw!r}: not a YAML value ({_yaml_problem(e)}); "
                              "quote strings, e.g. --set env='\"my.mod:make\"'.") from None
        out[key.strip()] = _scalar(value)
    return out


def _scalar(value: Any) -> Any:
    """YAML 1.1 reads ``1e-6`` (no dot) as a string; numbers written that way become floats."""
    if isinstance(value, str) and _FLOAT.match(value):
        return float(value)
    if isinstance(value, dict):
        return {k: _scalar(v) for k, v in value.items()}
    return value


def _yaml_problem(e: Exception) -> str:
    mark = getattr(e, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    return f"{problem}{where}"


_MERGED = ("advantage_params", "loss_params", "env_kwargs", "vllm_kwargs", "branching")


def _merge(fields_: dict[str, Any], updates: Mapping[str, Any], origin: str) -> None:
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    for key, value in updates.items():
        head, _, sub = str(key).partition(".")
        if head not in names:
            import difflib

            close = difflib.get_close_matches(head, sorted(names), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{origin}: unknown TrainConfig field {head!r}.{hint} Fields: {sorted(names)}.")
        current = fields_.get(head)
        if isinstance(current, BranchConfig):
            current = dataclasses.asdict(current)
        if sub:
            if head not in _MERGED:
                raise ConfigError(f"{origin}: TrainConfig.{head} is not a mapping, so {key!r} cannot set a sub-key; "
                                  f"mappings: {list(_MERGED)}.")
            if current is not None and not isinstance(current, Mapping):
                raise ConfigError(f"{origin}: TrainConfig.{head}={current!r} is not a mapping, so {key!r} "
                                  "cannot set a sub-key.")
            fields_[head] = {**(current or {}), sub: value}
        elif head in _MERGED and isinstance(value, Mapping) and isinstance(current, Mapping):
            fields_[head] = {**current, **value}  # merged into the preset's, never silently replaced
        else:
            fields_[head] = value


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise ConfigError(f"config file {str(path)!r} {what}; pass a YAML mapping of TrainConfig fields.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"config file {str(path)!r} cannot be read ({e.strerror or e}).") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); pass a YAML file.") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML (nested too deeply); TrainConfig fields are at most "
                          "a mapping of scalars deep.") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({_yaml_problem(e)}).") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a YAML mapping of TrainConfig fields, got {type(data).__name__}.")
    return {str(k): _scalar(v) for k, v in data.items()}


def load_train_config(
    algo: str | None, config_file: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> TrainConfig:
    """Preset of ``algo``, then the YAML file, then ``overrides`` (see the module docstring).

    ``algo`` may be None when the YAML file names it (``algo: aepo``, as in a run's config.yaml);
    when both name one they must agree. Setting ``advantage`` or ``loss`` to another function (without
    its ``*_params``) starts those parameters from that function's defaults.
    """
    data = _read_yaml(Path(config_file)) if config_file is not None else {}
    overrides = dict(overrides or {})
    named = [(where, v) for where, v in ((f"{config_file}: algo", data.pop("algo", None)),
                                         ("--set algo", overrides.pop("algo", None))) if v is not None]
    if algo is None:
        if not named:
            raise ConfigError("no algorithm: pass --algo NAME or put 'algo: NAME' in the config file; "
                              f"presets: {list(PRESETS)}.")
        algo = named[0][1]
    for where, value in named:
        if value != algo:
            raise ConfigError(f"{where}={value!r} contradicts algo={algo!r}; use one algorithm (or drop the key).")
    if algo not in PRESETS:
        import difflib

        close = difflib.get_close_matches(str(algo), list(PRESETS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown algorithm {algo!r}.{hint} Presets: {list(PRESETS)}.")
    fields_ = PRESETS[algo].fields()
    for kind in ("advantage", "loss"):
        if overrides.get(kind, data.get(kind, fields_[kind])) != fields_[kind]:
            fields_[f"{kind}_params"] = {}  # another function: its own defaults, not the preset's
    _merge(fields_, data, str(config_file))
    _merge(fields_, overrides, "--set")
    return build(TrainConfig, fields_)
