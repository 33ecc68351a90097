"""Configs: validation, paper / code-compat presets for the §8 flags, and that every preset's
advantage and loss resolve in the registries and run on a batch."""

from __future__ import annotations

import pytest
import torch

from branchgym.algorithms.config import (
    AEPOConfig,
    ARPOConfig,
    BranchConfig,
    EMPGConfig,
    EntropyMaskConfig,
    GRPOConfig,
)
from branchgym.algorithms.inputs import AdvantageInputs, LossInputs
from branchgym.algorithms.registry import ADVANTAGES, POLICY_LOSSES
from branchgym.errors import ConfigError

PRESETS = [
    GRPOConfig(),
    GRPOConfig.paper(),
    GRPOConfig.code_compat(),
    GRPOConfig.dapo(),
    GRPOConfig.dr_grpo(),
    ARPOConfig.paper(),
    ARPOConfig.code_compat(),
    AEPOConfig.paper(),
    AEPOConfig.code_compat(),
    AEPOConfig.code_compat(entropy_coeff=0.001),
    EMPGConfig.paper(),
    EMPGConfig.code_compat(),
    EntropyMaskConfig.paper(),
    EntropyMaskConfig.code_compat(),
]


def _batch() -> tuple[AdvantageInputs, torch.Tensor]:
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    h = torch.rand(4, 3, generator=torch.Generator().manual_seed(0))
    batch = AdvantageInputs(
        torch.tensor([1.0, 0.0, 0.5, 1.0]),
        torch.tensor([0, 0, 0, 0]),
        mask,
        entropies=h,
        parent_ids=torch.tensor([-1, 0, -1, -1]),
        branch_points=torch.tensor([0, 1, 0, 0]),
    )
    return batch, h


@pytest.mark.parametrize("cfg", PRESETS, ids=lambda c: type(c).__name__)
def test_presets_resolve_and_run(cfg) -> None:
    batch, h = _batch()
    adv = ADVANTAGES.get(cfg.advantage_name)(batch, **cfg.advantage_params())
    assert adv.shape == (4, 3) and torch.isfinite(adv).all()
    logp = torch.full((4, 3), -1.0, requires_grad=True)
    loss, metrics = POLICY_LOSSES.get(cfg.loss_name)(
        LossInputs(
            logp,
            logp.detach() + 0.1,
            adv,
            batch.loss_mask,
            entropies=h,
            ref_logp=torch.full((4, 3), -1.1),
        ),
        **cfg.loss_params(),
    )
    loss.backward()
    assert torch.isfinite(loss) and logp.grad is not None and "loss/policy" in metrics


def test_arpo_presets_carry_the_flags() -> None:
    paper, code = ARPOConfig.paper(), ARPOConfig.code_compat()
    assert (paper.entropy_probe, paper.h_init, paper.attribution) == (
        "after_tool",
        "per_trajectory",
        "hard",
    )
    assert (code.entropy_probe, code.h_init, code.attribution) == (
        "prev_segment",
        "code_stale_dict",
        "soft",
    )
    assert code.advantage_name == "arpo_soft" and paper.advantage_name == "arpo_hard"
    b = code.branching
    assert (b.n, b.initial, b.z_extra, b.tau, b.weight, b.rule, b.penalty) == (
        16,
        8,
        1,
        0.5,
        0.2,
        "arpo_code",
        0.0,
    )
    assert ARPOConfig.code_compat(n=12, initial_rollouts=6).branching.n == 12


def test_aepo_presets_and_entropy_advantage_gating() -> None:
    code = AEPOConfig.code_compat()
    assert not code.applies_entropy_advantage  # Q5: entropy_coeff 0 -> skipped
    assert code.advantage_name == "arpo_soft" and code.loss_params()["entropy_adv_weight"] == 0.0
    on = AEPOConfig.code_compat(entropy_coeff=0.001)
    assert (
        on.applies_entropy_advantage and on.loss_params()["entropy_adv_weight"] == 0.2
    )  # micro-batch scope
    paper = AEPOConfig.paper()
    assert paper.advantage_name == "aepo" and paper.advantage_params()["weight"] == 0.2
    assert paper.loss_params()["entropy_adv_weight"] == 0.0  # applied once, in the estimator
    assert (
        paper.branching.penalty_counter == "per_path"
        and code.branching.penalty_counter == "per_prompt_round"
    )
    assert code.branching.rule == "aepo_code" and code.branching.penalty == 0.05
    assert (paper.m_rounding, paper.enable_dynamic_rollouts) == ("paper_round", True)
    assert (code.m_rounding, code.enable_dynamic_rollouts) == ("code_floor_plus_one", False)
    assert AEPOConfig.code_compat(balanced_clipping=False).loss_name == "ppo_clip"


def test_other_flags() -> None:
    assert GRPOConfig(std_unbiased=False).advantage_params()["std_unbiased"] is False
    assert GRPOConfig.dr_grpo().advantage_name == "dr_grpo"
    assert GRPOConfig.dapo().loss_params()["clip_high"] == 0.28
    assert EMPGConfig.code_compat().advantage_params()["zeta"] == 0.05
    assert EntropyMaskConfig.code_compat().entropy_mask_scope == "microbatch"


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: BranchConfig(n=4, initial=5), "initial"),
        (lambda: BranchConfig(tau=1.5), "tau"),
        (lambda: BranchConfig(alpha=0.3), "paper"),
        (lambda: BranchConfig(penalty=0.05), "aepo_code"),
        (lambda: BranchConfig(entropy_probe="next"), "entropy_probe"),
        (lambda: GRPOConfig(agg_mode="mean"), "agg_mode"),
        (lambda: GRPOConfig(clip_ratio_c=1.0), "clip_ratio_c"),
        (lambda: GRPOConfig(kl_estimator="k9"), "kl_estimator"),
        (lambda: ARPOConfig(attribution="both"), "attribution"),
        (lambda: ARPOConfig(beam_size=0), "beam_size"),
        (lambda: AEPOConfig(m_rounding="ceil"), "m_rounding"),
        (lambda: AEPOConfig(entropy_norm_scope="batch"), "entropy_norm_scope"),
        (lambda: EMPGConfig(empg_final_norm="mean"), "empg_final_norm"),
        (lambda: EntropyMaskConfig(ratio=0.0), "ratio"),
    ],
)
def test_invalid_values_raise_config_error_naming_the_field(make, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        make()


def test_configs_are_frozen() -> None:
    with pytest.raises(AttributeError):
        GRPOConfig().clip_low = 0.3  # type: ignore[misc]


def test_param_specs_name_keyword_arguments_of_registered_functions() -> None:
    """Every range in PARAM_SPECS belongs to a real keyword argument, and every preset's
    parameters pass the signature check of the function they are given to."""
    import inspect

    from branchgym.algorithms.config import PARAM_SPECS
    from branchgym.fields import check_keywords

    keywords = {
        p.name
        for registry in (ADVANTAGES, POLICY_LOSSES)
        for name in registry
        for p in inspect.signature(registry.get(name)).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    assert set(PARAM_SPECS) <= keywords, set(PARAM_SPECS) - keywords
    for cfg in PRESETS:
        for registry, name, params in (
            (ADVANTAGES, cfg.advantage_name, cfg.advantage_params()),
            (POLICY_LOSSES, cfg.loss_name, cfg.loss_params()),
        ):
            assert check_keywords("t", registry.get(name), name, params, PARAM_SPECS) == params


def test_config_fields_share_the_keyword_ranges() -> None:
    """A config field and the loss keyword it feeds refuse the same values."""
    with pytest.raises(ConfigError, match=r"GRPOConfig.clip_high=-1 must be a finite number ≥ 0"):
        GRPOConfig(clip_high=-1)
    with pytest.raises(ConfigError, match=r"ARPOConfig.clip_low=1.5 must be a finite number in \[0, 1\]"):
        ARPOConfig(clip_low=1.5)
    assert type(GRPOConfig(clip_low=0).clip_low) is float
