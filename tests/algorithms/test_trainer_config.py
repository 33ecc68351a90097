"""TrainConfig presets, YAML and --set precedence, and clear errors."""

from __future__ import annotations

import pytest

from branchgym.algorithms.config import BranchConfig
from branchgym.algorithms.registry import ADVANTAGES, POLICY_LOSSES
from branchgym.algorithms.train_config import PRESETS, load_train_config, parse_sets, preset
from branchgym.errors import ConfigError


@pytest.mark.parametrize("algo", list(PRESETS))
def test_every_preset_names_registered_functions(algo: str) -> None:
    cfg = preset(algo)
    assert cfg.algo == algo
    ADVANTAGES.get(cfg.advantage)
    POLICY_LOSSES.get(cfg.loss)
    assert (cfg.rollout == "tree") == algo.startswith(("arpo", "aepo"))
    if cfg.rollout == "tree":
        assert isinstance(cfg.branching, BranchConfig)


def test_presets_follow_the_spec_defaults() -> None:
    assert preset("dapo").loss_params["clip_high"] == 0.28 and preset("dapo").dynamic_sampling
    assert preset("dr_grpo").advantage == "dr_grpo"
    assert preset("arpo").branching == BranchConfig(n=16, initial=8, z_extra=1, tau=0.5, weight=0.2)
    aepo = preset("aepo")
    assert aepo.branching.penalty == 0.05 and aepo.branching.rule == "aepo_code" and aepo.loss == "aepo"
    assert preset("arpo_paper").advantage == "arpo_hard"
    assert preset("grpo_paper").ref_model and preset("grpo_paper").loss_params["kl_coef"] == 0.04


def test_yaml_then_set_precedence(tmp_path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("lr: 1e-5\nsteps: 7\nbranching:\n  n: 8\n  initial: 4\nloss_params:\n  clip_high: 0.3\n")
    cfg = load_train_config("arpo", f, parse_sets(["steps=9", "branching.initial=2"]))
    assert cfg.lr == 1e-5 and cfg.steps == 9
    assert cfg.branching.n == 8 and cfg.branching.initial == 2
    assert cfg.loss_params["clip_high"] == 0.3 and cfg.loss_params["clip_low"] == 0.2  # merged, not replaced


def test_errors_name_the_value_and_the_fix(tmp_path) -> None:
    with pytest.raises(ConfigError, match="Did you mean 'lr'"):
        load_train_config("grpo", overrides={"lrr": 1.0})
    with pytest.raises(ConfigError, match="Did you mean 'aepo'"):
        load_train_config("aepoo")
    with pytest.raises(ConfigError, match="ref_model=true"):
        load_train_config("grpo", overrides={"loss_params.kl_coef": 0.04})
    with pytest.raises(ConfigError, match="key=value"):
        parse_sets(["lr"])
    with pytest.raises(ConfigError, match="must be an int ≥ 1"):
        preset("grpo", steps=0)
    with pytest.raises(ConfigError, match="does not exist"):
        load_train_config("grpo", tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="need 1 ≤ initial ≤ n"):
        preset("arpo", branching={"n": 4, "initial": 8})


def test_the_algorithm_list_is_written_once() -> None:
    """CLI choices, ``--help`` and the README's ``--algo`` list all come from (or match) PRESETS."""
    import re
    from pathlib import Path

    from branchgym.cli import build_parser

    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]  # type: ignore[union-attr]
    algo = next(a for a in train._actions if a.dest == "algo")
    assert list(algo.choices) == list(PRESETS)
    help_text = train.format_help()
    assert all(f"  {name} " in help_text for name in PRESETS)
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    bullet = readme[readme.index("- `--algo`: a preset per algorithm"):]
    bullet = bullet[: bullet.index("\n- ")]
    listed = re.findall(r"`([a-z_0-9]+)`", bullet)
    assert sorted(set(listed) - {"algo"}) == sorted(PRESETS)


@pytest.mark.parametrize("algo", list(PRESETS))
def test_a_runs_config_yaml_reloads_without_algo(tmp_path, algo: str) -> None:
    import yaml

    cfg = preset(algo, steps=3)
    f = tmp_path / "config.yaml"
    f.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    assert load_train_config(None, f) == cfg


def test_algo_in_yaml_is_honoured_or_refused(tmp_path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("algo: aepo\nsteps: 3\n")
    assert load_train_config(None, f).algo == "aepo"
    assert load_train_config("aepo", f).steps == 3
    with pytest.raises(ConfigError, match="algo='aepo' contradicts algo='grpo'"):
        load_train_config("grpo", f)
    with pytest.raises(ConfigError, match="pass --algo NAME"):
        load_train_config(None)


def test_a_branching_mapping_is_merged_into_the_presets() -> None:
    """``branching: {n: 8}`` on aepo keeps AEPO's rule and penalty (it used to become ARPO's)."""
    cfg = preset("aepo", branching={"n": 8, "initial": 4})
    assert (cfg.branching.n, cfg.branching.initial) == (8, 4)
    assert (cfg.branching.rule, cfg.branching.penalty) == ("aepo_code", 0.05)


def test_another_advantage_or_loss_starts_from_its_own_defaults() -> None:
    cfg = load_train_config("grpo", overrides=parse_sets(["advantage=rloo", "loss=cispo"]))
    assert (cfg.advantage, cfg.advantage_params, cfg.loss, cfg.loss_params) == ("rloo", {}, "cispo", {})
    cfg = load_train_config("grpo", overrides=parse_sets(["loss=cispo", "loss_params.clip_high=0.3"]))
    assert cfg.loss_params == {"clip_high": 0.3}


def test_params_are_checked_against_the_registered_signature() -> None:
    def capped(inputs, *, cap: float = 1.0, mode: str = "a"):  # a user's loss
        raise AssertionError("never called at config time")

    def open_ended(inputs, **hparams):
        raise AssertionError("never called at config time")

    POLICY_LOSSES.register("test_capped", capped)
    POLICY_LOSSES.register("test_open", open_ended)
    try:
        assert preset("grpo", loss="test_capped", loss_params={"cap": 2}).loss_params == {"cap": 2.0}
        with pytest.raises(ConfigError, match=r"loss_params\.cap='x' must be a finite number"):
            preset("grpo", loss="test_capped", loss_params={"cap": "x"})
        with pytest.raises(ConfigError, match=r"'capx'.*test_capped.*Did you mean 'cap'\? Allowed: \['cap', 'mode'\]"):
            preset("grpo", loss="test_capped", loss_params={"capx": 2})
        assert preset("grpo", loss="test_open", loss_params={"anything": 1}).loss_params == {"anything": 1}
    finally:
        POLICY_LOSSES.unregister("test_capped")
        POLICY_LOSSES.unregister("test_open")
