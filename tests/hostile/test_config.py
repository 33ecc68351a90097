"""Bad configs: every one is refused when the config is built, before any model loads, with one
line that names the field, the value and what is allowed (never a traceback, never a silent run).

The table covers ``TrainConfig`` (through ``--set`` strings and YAML files, as the CLI reads
them), its sub-configs, the part-1 algorithm configs, ``QuickstartConfig`` and ``SFTConfig``;
a subset runs through the real ``branchgym train`` command in a subprocess whose ``--model`` does
not exist, so a config error that came after the model load would show the model error instead.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from branchgym.algorithms.config import (
    AEPOConfig,
    ARPOConfig,
    BranchConfig,
    EMPGConfig,
    EntropyMaskConfig,
    GRPOConfig,
)
from branchgym.algorithms.quickstart import QuickstartConfig
from branchgym.algorithms.sft import SFTConfig
from branchgym.algorithms.train_config import load_train_config, parse_sets
from branchgym.errors import ConfigError

# (algo, "--set" item, words the one-line error must contain)
SETS = [
    ("grpo", "temperature=abc", ["temperature", "'abc'", "finite number > 0"]),
    ("grpo", "temperature=0", ["temperature", "> 0"]),
    ("grpo", "weight_decay=-5", ["weight_decay", "-5", "≥ 0"]),
    ("arpo", "branching.n=abc", ["branching", "n='abc'", "int ≥ 1"]),
    ("arpo", "branching.foo=1", ["branching", "'foo'", "Allowed"]),
    ("arpo", "branching.tau=2", ["tau", "[0, 1]"]),
    ("arpo", "branching.rule=greedy", ["rule", "'greedy'", "arpo_code"]),
    ("arpo", "branching.initial=0", ["initial", "0", "≥ 1"]),
    ("arpo", "branching.alpha=abc", ["alpha", "'abc'", "uniform"]),
    ("grpo", "device=gpu", ["device", "'gpu'", "cuda"]),
    ("grpo", "threads=-1", ["threads", "-1", "≥ 1"]),
    ("grpo", "threads=abc", ["threads", "'abc'", "int"]),
    ("grpo", "lr=abc", ["lr", "'abc'", "(0, 1]"]),
    ("grpo", "lr=inf", ["lr", "inf", "finite"]),
    ("grpo", "lr=nan", ["lr", "nan", "finite"]),
    ("grpo", "lr=-1e-5", ["lr", "-1e-05", "(0, 1]"]),
    ("grpo", "lr=1e308", ["lr", "1e+308", "(0, 1]"]),
    ("grpo", "warmup_steps=-3", ["warmup_steps", "-3", "≥ 0"]),
    ("grpo", "branching=5", ["branching", "5", "BranchConfig"]),
    ("grpo", "branching.n=8", ["branching", "tree rollouts only"]),
    ("grpo", "premonitor=true", ["premonitor", "tree rollouts only"]),
    ("grpo", "premonitor=maybe", ["premonitor", "'maybe'", "true or false"]),
    ("grpo", "vllm_kwargs=5", ["vllm_kwargs", "5", "mapping"]),
    ("grpo", "vllm_kwargs.max_model_len=512", ["vllm_kwargs", "rollout_backend='vllm'"]),
    ("grpo", "env_kwargs=5", ["env_kwargs", "5", "mapping"]),
    ("grpo", "steps=abc", ["steps", "'abc'", "int ≥ 1"]),
    ("grpo", "steps=2.5", ["steps", "2.5", "int ≥ 1"]),
    ("grpo", "steps=true", ["steps", "True", "int ≥ 1"]),
    ("grpo", "seed=-1", ["seed", "-1", "[0, 4294967294]"]),
    ("grpo", "top_p=0", ["top_p", "(0, 1]"]),
    ("grpo", "top_p=1.5", ["top_p", "1.5", "(0, 1]"]),
    ("grpo", "max_grad_norm=nan", ["max_grad_norm", "nan"]),
    ("grpo", "call_limit=-2", ["call_limit", "-2", "≥ 0 or null"]),
    ("dapo", "overlong_buffer_frac=1.5", ["overlong_buffer_frac", "1.5", "(0, 1)"]),
    ("grpo", "rollout=graph", ["rollout", "'graph'", "'flat'"]),
    ("grpo", "lr_schedule=step", ["lr_schedule", "'step'", "cosine"]),
    ("grpo", "entropy_source=all", ["entropy_source", "'all'", "topk"]),
    ("grpo", "rollout_backend=sglang", ["rollout_backend", "'sglang'", "vllm"]),
    ("grpo", "advantage=grp0", ["advantage", "'grp0'", "Did you mean 'grpo'"]),
    ("grpo", "loss=ppo", ["loss", "'ppo'", "ppo_clip"]),
    ("grpo", "loss_params.clip_high=-1", ["loss_params.clip_high", "-1", "≥ 0"]),
    ("grpo", "loss_params.clip_low=abc", ["loss_params.clip_low", "'abc'", "[0, 1]"]),
    ("grpo", "loss_params.clip_ratio_c=0.5", ["loss_params.clip_ratio_c", "0.5", "> 1 or null"]),
    ("grpo", "loss_params.agg_mode=mean", ["loss_params.agg_mode", "'mean'", "token-mean"]),
    ("grpo", "loss_params.kl_estimator=k9", ["loss_params.kl_estimator", "'k9'", "k3"]),
    ("grpo", "loss_params.bogus=1", ["loss_params", "'bogus'", "ppo_clip", "clip_high"]),
    ("grpo", "advantage_params.eps=-1", ["advantage_params.eps", "-1", "≥ 0"]),
    ("grpo", "advantage_params.bogus=1", ["advantage_params", "'bogus'", "grpo", "std_unbiased"]),
    ("grpo", "advantage_params=5", ["advantage_params", "5", "mapping"]),
    ("rloo", "advantage_params.eps=0.1", ["advantage_params", "'eps'", "rloo"]),
    ("high_entropy", "loss_params.ratio=0", ["loss_params.ratio", "(0, 1]"]),
    ("empg", "advantage_params.final_norm=mean", ["advantage_params.final_norm", "'mean'", "zero_mean_steps"]),
    ("grpo", "mini_batches=0", ["mini_batches", "0", "≥ 1"]),
    ("grpo", "micro_batch_size=-4", ["micro_batch_size", "-4", "≥ 1"]),
    ("grpo", "keep_checkpoints=0", ["keep_checkpoints", "≥ 1"]),
    ("dapo", "max_gen_batches=abc", ["max_gen_batches", "'abc'"]),
    ("grpo", "env=", ["env", "''", "non-empty"]),
    ("grpo", "out=", ["out", "''", "non-empty"]),
    ("grpo", "max_new_tokens=0", ["max_new_tokens", "≥ 1"]),
    ("grpo", "lr.x=1", ["lr", "not a mapping"]),
    ("grpo", "lrr=1", ["lrr", "Did you mean 'lr'"]),
    ("grpo", "algo=aepo", ["algo", "'aepo'", "'grpo'"]),
    ("grpo", "lr=[1", ["lr", "not a YAML value"]),
    ("grpo", "lr=" + "[" * 5000 + "]" * 5000, ["lr", "nested too deeply"]),
    ("grpo", "lr=1" + "0" * 400, ["lr", "(401 chars)", "finite number"]),
    ("grpo", "steps=1" + "0" * 400, ["steps", "(401 chars)"]),
    ("grpo", "env_kwargs.bogus=1", ["env_kwargs", "'bogus'", "ToolEnv", "max_turns"]),
    ("grpo", "env_kwargs.max_turns=abc", ["env_kwargs.max_turns", "'abc'", "int"]),
    ("grpo", "env_kwargs.split=dev", ["env_kwargs.split", "TrainConfig.split"]),
    ("grpo", "env=WebSearch-Ofline-v0", ["env", "Did you mean 'WebSearch-Offline-v0'"]),
    ("grpo", "env=nowhere.mod:make", ["env", "'nowhere.mod:make'", "cannot be loaded"]),
]

# (algo, YAML text or bytes, words the error must contain)
YAMLS = [
    ("grpo", "lr: [1, 2\nsteps: 3\n", ["not valid YAML", "line"]),
    ("grpo", "steps: 3\n\tlr: 1\n", ["not valid YAML"]),
    ("grpo", "- lr\n- steps\n", ["expected a YAML mapping", "list"]),
    ("grpo", b"lr: \xff\xfe\n", ["not UTF-8"]),
    ("grpo", "algo: aepo\n", ["algo", "'aepo'", "'grpo'"]),
    ("arpo", "branching:\n  n: abc\n", ["branching", "n='abc'"]),
    ("arpo", "branching:\n  bogus: 1\n", ["branching", "'bogus'", "Allowed"]),
    ("grpo", "loss_params:\n  bogus: 1\n", ["loss_params", "'bogus'", "ppo_clip"]),
    ("grpo", "loss_params: 7\n", ["loss_params", "7", "mapping"]),
    ("grpo", "lr: .inf\n", ["lr", "inf", "finite"]),
    ("grpo", "temperature: abc\n", ["temperature", "'abc'"]),
    ("grpo", "unknown_field: 1\n", ["unknown TrainConfig field", "'unknown_field'"]),
    ("grpo", "device: gpu\n", ["device", "'gpu'"]),
    ("grpo", "rollout_backend: vllm\nvllm_kwargs:\n  max_model_len: big\n", ["vllm_kwargs.max_model_len", "'big'"]),
    ("grpo", "rollout_backend: vllm\nvllm_kwargs:\n  seed: 3\n", ["vllm_kwargs.seed", "remove it"]),
    ("grpo", "lr: " + "[" * 5000 + "]" * 5000 + "\n", ["not valid YAML", "nested too deeply"]),
]

# (constructor, kwargs, words the error must contain): the sub-configs and the other configs
DIRECT = [
    (BranchConfig, {"n": "abc"}, ["BranchConfig.n", "'abc'", "int ≥ 1"]),
    (BranchConfig, {"tau": math.nan}, ["BranchConfig.tau", "nan"]),
    (BranchConfig, {"z_extra": -1}, ["BranchConfig.z_extra", "-1"]),
    (BranchConfig, {"refill": "yes"}, ["BranchConfig.refill", "'yes'", "true or false"]),
    (GRPOConfig, {"clip_high": -1}, ["GRPOConfig.clip_high", "-1", "≥ 0"]),
    (GRPOConfig, {"group_size": True}, ["GRPOConfig.group_size", "True", "int"]),
    (GRPOConfig, {"eps": "small"}, ["GRPOConfig.eps", "'small'"]),
    (GRPOConfig, {"overlong_buffer": 0}, ["GRPOConfig.overlong_buffer", "0", "≥ 1 or null"]),
    (ARPOConfig, {"entropy_tokens": 0}, ["ARPOConfig.entropy_tokens", "0", "≥ 1"]),
    (ARPOConfig, {"branch_probability": 1.5}, ["ARPOConfig.branch_probability", "1.5", "[0, 1]"]),
    (AEPOConfig, {"premonitor_beta": -1}, ["AEPOConfig.premonitor_beta", "-1", "≥ 0"]),
    (AEPOConfig, {"entropy_adv_weight": math.inf}, ["AEPOConfig.entropy_adv_weight", "inf", "finite"]),
    (EMPGConfig, {"k": "x"}, ["EMPGConfig.k", "'x'"]),
    (EMPGConfig, {"base": 5}, ["EMPGConfig.base", "5", "GRPOConfig"]),
    (EMPGConfig, {"zeta": math.nan}, ["EMPGConfig.zeta", "nan"]),
    (EntropyMaskConfig, {"ratio": 2}, ["EntropyMaskConfig.ratio", "2", "(0, 1]"]),
    (SFTConfig, {"lr": "abc"}, ["SFTConfig.lr", "'abc'", "(0, 1]"]),
    (SFTConfig, {"lr": 50.0}, ["SFTConfig.lr", "50.0", "(0, 1]"]),
    (SFTConfig, {"steps": -1}, ["SFTConfig.steps", "-1", "≥ 0"]),
    (SFTConfig, {"batch_size": 1.5}, ["SFTConfig.batch_size", "1.5", "int"]),
    (SFTConfig, {"weight_decay": -0.1}, ["SFTConfig.weight_decay", "-0.1"]),
    (QuickstartConfig, {"threads": -1}, ["QuickstartConfig.threads", "-1", "≥ 1"]),
    (QuickstartConfig, {"rl_lr": math.inf}, ["QuickstartConfig.rl_lr", "inf", "finite"]),
    (QuickstartConfig, {"hidden": 100}, ["QuickstartConfig.hidden", "100", "multiple of"]),
    (QuickstartConfig, {"group_size": "x"}, ["QuickstartConfig.group_size", "'x'"]),
    (QuickstartConfig, {"max_new_tokens": 0}, ["QuickstartConfig.max_new_tokens", "0"]),
    (QuickstartConfig, {"vocab_size": 100}, ["QuickstartConfig.vocab_size", "100", "≥ 300"]),
    (QuickstartConfig, {"prompts_per_step": 1, "group_size": 1, "aepo_initial": 1}, ["aepo", "2 trajectories"]),
]


def _one_line(err: ConfigError, words: list[str]) -> None:
    msg = str(err)
    assert "\n" not in msg, msg
    for w in words:
        assert w in msg, (w, msg)


@pytest.mark.parametrize(("algo", "item", "words"), SETS, ids=[s[1][:40] for s in SETS])
def test_bad_set_values_are_refused_naming_the_field(algo: str, item: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as e:
        load_train_config(algo, overrides=parse_sets([item]))
    _one_line(e.value, words)


@pytest.mark.parametrize(("algo", "text", "words"), YAMLS, ids=[str(i) for i in range(len(YAMLS))])
def test_bad_yaml_files_are_refused_naming_the_field(tmp_path: Path, algo: str, text, words: list[str]) -> None:
    f = tmp_path / "bad.yaml"
    if isinstance(text, bytes):
        f.write_bytes(text)
    else:
        f.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_train_config(algo, f)
    _one_line(e.value, words)


@pytest.mark.parametrize(("cls", "kwargs", "words"), DIRECT, ids=[d[2][0] for d in DIRECT])
def test_bad_sub_configs_are_refused_naming_the_field(cls, kwargs, words: list[str]) -> None:
    with pytest.raises(ConfigError) as e:
        cls(**kwargs)
    _one_line(e.value, words)


def test_a_directory_as_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_train_config("grpo", tmp_path)


def test_the_table_is_the_size_the_issue_asks_for() -> None:
    assert len(SETS) + len(YAMLS) + len(DIRECT) >= 60


# Through the real command: the model path does not exist, so an error raised only after the
# model load (or a config silently accepted) would print "does not exist" instead.
CLI = [
    (["--algo", "grpo", "--set", "temperature=abc"], "temperature"),
    (["--algo", "grpo", "--set", "lr=inf"], "TrainConfig.lr="),
    (["--algo", "grpo", "--set", "device=gpu"], "device"),
    (["--algo", "grpo", "--set", "threads=-1"], "threads"),
    (["--algo", "grpo", "--set", "loss_params.clip_high=-1"], "loss_params.clip_high"),
    (["--algo", "grpo", "--set", "loss_params.clip_high=abc"], "loss_params.clip_high"),
    (["--algo", "grpo", "--set", "loss_params.bogus=1"], "bogus"),
    (["--algo", "arpo", "--set", "branching.n=abc"], "branching"),
    (["--algo", "grpo", "--set", "vllm_kwargs=5"], "vllm_kwargs"),
    (["--algo", "grpo", "--set", "env_kwargs.bogus=1"], "bogus"),
    (["--algo", "grpo", "--env", "WebSearch-Ofline-v0"], "WebSearch-Ofline-v0"),
    (["--algo", "grpo", "--config", "{yaml_syntax}"], "not valid YAML"),
    (["--algo", "grpo", "--config", "{yaml_algo}"], "algo"),
]


@pytest.mark.parametrize(("args", "word"), CLI, ids=[c[1] for c in CLI])
def test_cli_reports_the_config_error_before_loading_the_model(tmp_path: Path, args: list[str], word: str) -> None:
    (tmp_path / "syntax.yaml").write_text("lr: [1\n")
    (tmp_path / "algo.yaml").write_text("algo: aepo\n")
    args = [a.format(yaml_syntax=tmp_path / "syntax.yaml", yaml_algo=tmp_path / "algo.yaml") for a in args]
    proc = subprocess.run(
        [sys.executable, "-m", "branchgym.cli", "train", *args, "--model", str(tmp_path / "no-model"),
         "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("branchgym train: error:"), proc.stderr
    assert word in lines[0] and "does not exist" not in lines[0], lines[0]
    assert not (tmp_path / "run").exists()  # nothing was started
