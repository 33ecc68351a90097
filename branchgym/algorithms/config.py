"""Frozen, validated configs per algorithm, with ``paper()`` / ``code_compat()`` presets.

Each config maps onto the registries: ``ADVANTAGES.get(cfg.advantage_name)(batch,
**cfg.advantage_params())`` and ``POLICY_LOSSES.get(cfg.loss_name)(inputs, **cfg.loss_params())``;
the tree-rollout algorithms also expose ``cfg.branching`` (a :class:`BranchConfig` for the
:class:`~branchgym.algorithms.expander.TreeExpander`). The paper/code differences are the flags
listed in docs/algorithms.md#flags.

>>> cfg = AEPOConfig.code_compat()
>>> cfg.advantage_name, cfg.loss_name, cfg.branching.rule, cfg.branching.penalty
('arpo_soft', 'aepo', 'aepo_code', 0.05)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from branchgym.algorithms.registry import AGGREGATIONS, KL_ESTIMATORS
from branchgym.errors import ConfigError
from branchgym.fields import Spec, ranged, validate

__all__ = [
    "BranchConfig",
    "GRPOConfig",
    "ARPOConfig",
    "AEPOConfig",
    "EMPGConfig",
    "EntropyMaskConfig",
    "PARAM_SPECS",
]

# Ranges of the estimators' and losses' keyword arguments, by name: the configs below declare
# their fields with them, and ``TrainConfig`` checks ``advantage_params`` / ``loss_params``
# against the registered function's signature with them (a name not listed here is checked for
# its annotated type only).
PARAM_SPECS: dict[str, Spec] = {
    "clip_low": Spec(ge=0.0, le=1.0, hint="PPO/GRPO use 0.2, CISPO 1.0 (no lower bound)"),
    "clip_high": Spec(ge=0.0, hint="PPO uses 0.2, DAPO 0.28"),
    "clip_ratio_c": Spec(gt=1.0, hint="the dual-clip c: verl uses 3.0, DAPO 10.0; null disables it"),
    "eps": Spec(ge=0.0, hint="1e-6 is usual"),
    "kl_coef": Spec(ge=0.0, hint="GRPO uses 0.04"),
    "kl_estimator": Spec(choices=lambda: list(KL_ESTIMATORS)),
    "agg_mode": Spec(choices=lambda: list(AGGREGATIONS)),
    "norm_constant": Spec(gt=0.0, hint="null means the response budget"),
    "ratio": Spec(gt=0.0, le=1.0, hint="the 80/20 paper uses 0.2"),
    "k": Spec(ge=0.0, hint="EMPG's project page uses 1.0"),
    "k_f": Spec(ge=0.0, hint="EMPG's project page uses 1.0"),
    "beta_low": Spec(ge=0.0, hint="GPPO uses 1.0"),
    "beta_high": Spec(ge=0.0, hint="GPPO uses 1.0"),
    "clip_cov_ratio": Spec(gt=0.0, le=1.0, hint="a fraction of the tokens; the paper uses 2e-4"),
    "kl_cov_ratio": Spec(gt=0.0, le=1.0, hint="a fraction of the tokens; the paper uses 2e-4"),
    "ppo_kl_coef": Spec(ge=0.0),
}


def _p(default: Any, name: str) -> Any:
    """A config field with the range of the keyword argument ``name`` in :data:`PARAM_SPECS`."""
    s = PARAM_SPECS[name]
    return ranged(default, ge=s.ge, gt=s.gt, le=s.le, lt=s.lt, choices=s.choices, hint=s.hint)


@dataclass(frozen=True)
class BranchConfig:
    """Branch rule and budget of a tree rollout (docs/algorithms.md#arpo, #aepo)."""

    n: int = ranged(16, ge=1)
    """M = ``rollout.n``: trajectories per prompt (globals + clones + refills)."""
    initial: int = ranged(8, ge=1)
    """N = ``initial_rollouts``: global trajectories per prompt (AEPO: per-prompt m overrides)."""
    z_extra: int = ranged(1, ge=0, hint="beam_size − 1")
    """clones per active source per round (= ``beam_size − 1``)."""
    tau: float = ranged(0.5, ge=0.0, le=1.0, hint="ARPO uses 0.5")
    """τ = ``branch_probability``."""
    weight: float = 0.2
    """w = ``entropy_weight`` (the paper's β)."""
    penalty: float = ranged(0.0, ge=0.0, hint="AEPO uses 0.05")
    """λ, AEPO's consecutive-branch penalty per round (0.05); 0 = ARPO."""
    rule: Literal["arpo_code", "aepo_code", "paper"] = "arpo_code"
    """decision rule: the ARPO or AEPO code's comparison, or the paper's ``P_t > τ``."""
    alpha: float | Literal["uniform"] = ranged("uniform", ge=0.0, le=1.0)
    """α ~ U[0,1) each decision (code), or a constant (paper rule only)."""
    penalty_counter: Literal["per_prompt_round", "per_path"] = "per_prompt_round"
    """what l counts (AEPO code: per prompt, per round; paper: per path)."""
    entropy_probe: Literal["prev_segment", "after_tool"] = "prev_segment"
    """ΔH from the segment that ended in the tool call (code) or k tokens after it (paper)."""
    h_init: Literal["per_trajectory", "code_stale_dict"] = "per_trajectory"
    """H_init per trajectory (paper; clones inherit it) or the code's never-cleared dict."""
    refill: bool = True
    """start one new global per round for a prompt with no active trajectory (both codes)."""

    def __post_init__(self) -> None:
        validate(self)
        o = "BranchConfig"
        if not self.initial <= self.n:
            raise ConfigError(
                f"{o}: need 1 ≤ initial ≤ n, got initial={self.initial!r}, n={self.n!r}."
            )
        if self.alpha != "uniform":
            if self.rule != "paper":
                raise ConfigError(
                    f"{o}.alpha={self.alpha!r} is a constant, which only the paper rule uses; "
                    "set rule='paper' or alpha='uniform'."
                )
        if self.rule == "arpo_code" and self.penalty != 0.0:
            raise ConfigError(
                f"{o}: rule='arpo_code' has no consecutive penalty, got penalty={self.penalty!r}; "
                "use rule='aepo_code' (or 'paper') for AEPO."
            )


@dataclass(frozen=True)
class GRPOConfig:
    """GRPO and its variants (DAPO, Dr. GRPO): group z-score advantage + PPO clip
    (docs/algorithms.md#grpo)."""

    group_size: int = ranged(16, ge=1)
    """G: trajectories per prompt (flat rollout)."""
    scale_by_std: bool = True
    """divide by the group std (False = Dr. GRPO)."""
    std_unbiased: bool = True
    """unbiased std (verl) or population std."""
    eps: float = _p(1e-6, "eps")
    clip_low: float = _p(0.2, "clip_low")
    clip_high: float = _p(0.2, "clip_high")
    clip_ratio_c: float | None = _p(3.0, "clip_ratio_c")
    """dual-clip c; None disables it."""
    agg_mode: str = _p("token-mean", "agg_mode")
    norm_constant: float | None = _p(None, "norm_constant")
    """C for seq-mean-token-sum-norm (default T)."""
    kl_coef: float = _p(0.0, "kl_coef")
    kl_estimator: str = _p("k3", "kl_estimator")
    overlong_buffer: int | None = ranged(None, ge=1)
    """DAPO overlong shaping buffer L_buf (None = off)."""
    dynamic_sampling: bool = False
    """DAPO: drop groups whose rewards are all equal."""

    def __post_init__(self) -> None:
        validate(self)

    @classmethod
    def paper(cls) -> GRPOConfig:
        """DeepSeekMath GRPO: G = 64, seq-mean-token-mean, k3 KL β = 0.04."""
        return cls(group_size=64, agg_mode="seq-mean-token-mean", kl_coef=0.04)

    @classmethod
    def code_compat(cls) -> GRPOConfig:
        """verl's GRPO as the ARPO/AEPO scripts run it: token-mean, KL coef 0, G = 16."""
        return cls()

    @classmethod
    def dapo(cls) -> GRPOConfig:
        """DAPO: clip-higher 0.28, token-mean, no KL, c = 10, overlong 4096, dynamic sampling."""
        return cls(clip_high=0.28, clip_ratio_c=10.0, overlong_buffer=4096, dynamic_sampling=True)

    @classmethod
    def dr_grpo(cls) -> GRPOConfig:
        """Dr. GRPO: no std, constant-normalised token sum, G = 8."""
        return cls(group_size=8, scale_by_std=False, agg_mode="seq-mean-token-sum-norm")

    @property
    def advantage_name(self) -> str:
        return "grpo" if self.scale_by_std else "dr_grpo"

    def advantage_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"std_unbiased": self.std_unbiased, "eps": self.eps}
        if self.scale_by_std:
            params["scale_by_std"] = True
        return params

    @property
    def loss_name(self) -> str:
        return "ppo_clip"

    def loss_params(self) -> dict[str, Any]:
        return {
            "clip_low": self.clip_low,
            "clip_high": self.clip_high,
            "clip_ratio_c": self.clip_ratio_c,
            "agg_mode": self.agg_mode,
            "norm_constant": self.norm_constant,
            "kl_coef": self.kl_coef,
            "kl_estimator": self.kl_estimator,
        }


@dataclass(frozen=True)
class ARPOConfig:
    """ARPO: entropy-based adaptive tree rollout + GRPO over the tree (docs/algorithms.md#arpo)."""

    n: int = ranged(16, ge=1)
    """M = rollout.n."""
    initial_rollouts: int = ranged(8, ge=1)
    """N global trajectories per prompt."""
    beam_size: int = ranged(2, ge=1, hint="1 = no branching")
    """Z_extra = beam_size − 1 clones per active source per round."""
    branch_probability: float = ranged(0.5, ge=0.0, le=1.0, hint="ARPO uses 0.5")
    """τ."""
    entropy_weight: float = 0.2
    """w (β in the paper)."""
    entropy_top_k: int = ranged(10, ge=1)
    """top-k logprobs per position for H_seg."""
    entropy_tokens: int = ranged(20, ge=1)
    """first k positions of a segment used for H_seg."""
    call_limit: int = ranged(3, ge=0)
    entropy_probe: Literal["prev_segment", "after_tool"] = "prev_segment"
    h_init: Literal["per_trajectory", "code_stale_dict"] = "per_trajectory"
    alpha: float | Literal["uniform"] = ranged("uniform", ge=0.0, le=1.0)
    attribution: Literal["soft", "hard"] = "soft"
    """soft (released code) or hard (paper) advantage attribution."""
    std_unbiased: bool = True
    eps: float = _p(1e-6, "eps")
    clip_low: float = _p(0.2, "clip_low")
    clip_high: float = _p(0.2, "clip_high")
    clip_ratio_c: float | None = _p(3.0, "clip_ratio_c")
    agg_mode: str = _p("token-mean", "agg_mode")
    norm_constant: float | None = _p(None, "norm_constant")

    def __post_init__(self) -> None:
        validate(self)
        _ = self.branching  # builds a BranchConfig, which validates the branch fields

    @classmethod
    def paper(cls, **overrides: Any) -> ARPOConfig:
        """Paper reading: ΔH after the tool result, per-trajectory H_init, hard attribution."""
        return replace(
            cls(entropy_probe="after_tool", h_init="per_trajectory", attribution="hard"),
            **overrides,
        )

    @classmethod
    def code_compat(cls, **overrides: Any) -> ARPOConfig:
        """Released code: lag-1 ΔH, stale H_init dict, α ~ U[0,1), soft attribution."""
        return replace(
            cls(entropy_probe="prev_segment", h_init="code_stale_dict", attribution="soft"),
            **overrides,
        )

    def _rule(self) -> Literal["arpo_code", "aepo_code", "paper"]:
        return "paper" if self.alpha != "uniform" else "arpo_code"

    @property
    def branching(self) -> BranchConfig:
        return BranchConfig(
            n=self.n,
            initial=self.initial_rollouts,
            z_extra=self.beam_size - 1,
            tau=self.branch_probability,
            weight=self.entropy_weight,
            rule=self._rule(),
            alpha=self.alpha,
            entropy_probe=self.entropy_probe,
            h_init=self.h_init,
        )

    @property
    def advantage_name(self) -> str:
        return "arpo_hard" if self.attribution == "hard" else "arpo_soft"

    def advantage_params(self) -> dict[str, Any]:
        return {"std_unbiased": self.std_unbiased, "eps": self.eps}

    @property
    def loss_name(self) -> str:
        return "ppo_clip"

    def loss_params(self) -> dict[str, Any]:
        return {
            "clip_low": self.clip_low,
            "clip_high": self.clip_high,
            "clip_ratio_c": self.clip_ratio_c,
            "agg_mode": self.agg_mode,
            "norm_constant": self.norm_constant,
        }


@dataclass(frozen=True)
class AEPOConfig(ARPOConfig):
    """AEPO: ARPO + pre-monitoring, consecutive-branch penalty, entropy-balanced clipping and
    entropy-aware advantage (docs/algorithms.md#aepo)."""

    n: int = ranged(12, ge=1)
    initial_rollouts: int = ranged(6, ge=1)
    call_limit: int = ranged(6, ge=0)
    penalty: float = ranged(0.05, ge=0.0, hint="AEPO uses 0.05")
    """λ per consecutive round."""
    penalty_counter: Literal["per_prompt_round", "per_path"] = "per_prompt_round"
    enable_dynamic_rollouts: bool = False
    """entropy pre-monitoring of the budget (release scripts: False)."""
    m_rounding: Literal["code_floor_plus_one", "paper_round"] = "code_floor_plus_one"
    premonitor_beta: float = ranged(0.5, ge=0.0)
    initial_entropy_tokens: int = ranged(50, ge=1)
    balanced_clipping: bool = True
    """stop-gradient on the upper clip (loss ``aepo``); False = plain PPO clip."""
    balanced_advantage: bool = True
    entropy_adv_weight: float = 0.2
    """a in Ã = A(1 + a·z(H))."""
    entropy_adv_requires_entropy_coeff: bool = False
    """code-compat True: the entropy-aware advantage runs only if entropy_coeff ≠ 0."""
    entropy_coeff: float = 0.0
    entropy_norm_scope: Literal["minibatch", "microbatch"] = "minibatch"
    """where μ_H, σ_H are taken."""

    @classmethod
    def paper(cls, **overrides: Any) -> AEPOConfig:
        """Paper reading: pre-monitoring on, per-path counter, n·σ rounded, entropy-aware
        advantage always on over the mini-batch, ΔH after the tool result."""
        base = cls(
            entropy_probe="after_tool",
            h_init="per_trajectory",
            attribution="soft",
            penalty_counter="per_path",
            enable_dynamic_rollouts=True,
            m_rounding="paper_round",
            entropy_adv_requires_entropy_coeff=False,
            entropy_norm_scope="minibatch",
        )
        return replace(base, **overrides)

    @classmethod
    def code_compat(cls, **overrides: Any) -> AEPOConfig:
        """Release scripts: dynamic rollouts off, per-prompt-round counter, ⌊nσ⌋+1, entropy
        advantage gated by entropy_coeff (0 → skipped), micro-batch scope, lag-1 ΔH."""
        base = cls(
            entropy_probe="prev_segment",
            h_init="code_stale_dict",
            attribution="soft",
            penalty_counter="per_prompt_round",
            enable_dynamic_rollouts=False,
            m_rounding="code_floor_plus_one",
            entropy_adv_requires_entropy_coeff=True,
            entropy_coeff=0.0,
            entropy_norm_scope="microbatch",
        )
        return replace(base, **overrides)

    def _rule(self) -> Literal["arpo_code", "aepo_code", "paper"]:
        return "paper" if self.alpha != "uniform" else "aepo_code"

    @property
    def branching(self) -> BranchConfig:
        return replace(
            super().branching, penalty=self.penalty, penalty_counter=self.penalty_counter
        )

    @property
    def applies_entropy_advantage(self) -> bool:
        """Whether Ã = A(1 + a·z) is applied at all."""
        gated = self.entropy_adv_requires_entropy_coeff and self.entropy_coeff == 0.0
        return self.balanced_advantage and self.entropy_adv_weight != 0.0 and not gated

    @property
    def advantage_name(self) -> str:
        if self.applies_entropy_advantage and self.entropy_norm_scope == "minibatch":
            return "aepo"
        return super().advantage_name

    def advantage_params(self) -> dict[str, Any]:
        params = super().advantage_params()
        if self.advantage_name == "aepo":
            params["weight"] = self.entropy_adv_weight
        return params

    @property
    def loss_name(self) -> str:
        return "aepo" if self.balanced_clipping else "ppo_clip"

    def loss_params(self) -> dict[str, Any]:
        params = super().loss_params()
        if self.balanced_clipping:
            micro = self.applies_entropy_advantage and self.entropy_norm_scope == "microbatch"
            params["entropy_adv_weight"] = self.entropy_adv_weight if micro else 0.0
        return params


@dataclass(frozen=True)
class EMPGConfig:
    """EMPG on top of GRPO or DAPO (docs/algorithms.md#empg)."""

    k: float = _p(1.0, "k")
    k_f: float = _p(1.0, "k_f")
    zeta: float = 0.1
    empg_final_norm: Literal["zero_mean_steps", "zero_mean_tokens", "none"] = "zero_mean_steps"
    """final normalisation (docs/algorithms.md#empg)."""
    base: GRPOConfig = GRPOConfig()
    """the base algorithm's advantage normalisation and loss."""

    def __post_init__(self) -> None:
        validate(self)

    @classmethod
    def paper(cls) -> EMPGConfig:
        """Project-page pseudocode defaults (k = k' = 1, ζ = 0.1) on DAPO."""
        return cls(base=GRPOConfig.dapo())

    @classmethod
    def code_compat(cls) -> EMPGConfig:
        """ARLArena's reproduction: ζ = 0.05, step-level zero mean, GRPO base."""
        return cls(zeta=0.05, empg_final_norm="zero_mean_steps")

    @property
    def advantage_name(self) -> str:
        return "empg"

    def advantage_params(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "k_f": self.k_f,
            "zeta": self.zeta,
            "final_norm": self.empg_final_norm,
            "scale_by_std": self.base.scale_by_std,
            "std_unbiased": self.base.std_unbiased,
            "eps": self.base.eps,
        }

    @property
    def loss_name(self) -> str:
        return self.base.loss_name

    def loss_params(self) -> dict[str, Any]:
        return self.base.loss_params()


@dataclass(frozen=True)
class EntropyMaskConfig:
    """Beyond the 80/20 rule: DAPO loss on the top-ρ entropy tokens
    (docs/algorithms.md#high-entropy)."""

    ratio: float = _p(0.2, "ratio")
    entropy_mask_scope: Literal["batch", "microbatch"] = "batch"
    """select over the whole batch (paper) or each micro-batch (code)."""
    base: GRPOConfig = GRPOConfig.dapo()

    def __post_init__(self) -> None:
        validate(self)

    @classmethod
    def paper(cls) -> EntropyMaskConfig:
        return cls(entropy_mask_scope="batch")

    @classmethod
    def code_compat(cls) -> EntropyMaskConfig:
        return cls(entropy_mask_scope="microbatch")

    @property
    def advantage_name(self) -> str:
        return self.base.advantage_name

    def advantage_params(self) -> dict[str, Any]:
        return self.base.advantage_params()

    @property
    def loss_name(self) -> str:
        return "high_entropy_mask"

    def loss_params(self) -> dict[str, Any]:
        params = {k: v for k, v in self.base.loss_params().items()}
        params["ratio"] = self.ratio
        return params
