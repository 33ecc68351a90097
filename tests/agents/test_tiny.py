from __future__ import annotations

import json
import subprocess
import sys

import pytest

from branchgym.agents.tiny import PROTOCOL_TAGS, TinyConfig, build, build_cached
from branchgym.errors import ConfigError


def test_cached_tiny_model_reloads_with_auto_classes(tiny_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_path)
    model = AutoModelForCausalLM.from_pretrained(tiny_path)
    assert model.config.vocab_size == len(tok) and model.config.num_hidden_layers == 2
    for tag in PROTOCOL_TAGS:  # each protocol tag is one token and survives decoding
        ids = tok.encode(tag, add_special_tokens=False)
        assert len(ids) == 1 and tok.decode(ids) == tag
    text = "x <search>Größe 日本</search>\n<result>\nPage 1: ∑\n</result>\n"
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q?"}]
    prompt = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    assert (
        prompt
        == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert (
        tok.eos_token == "<|im_end|>" and model.generation_config.eos_token_id == tok.eos_token_id
    )
    assert json.loads((tiny_path / "branchgym_tiny.json").read_text())["pretrain_steps"] == 200


def test_build_cached_builds_once_per_config(tmp_path):
    small = {"vocab_size": 400, "hidden": 32, "layers": 1, "pretrain_steps": 0}
    first = build_cached(tmp_path, **small)
    stamp = (first / "config.json").stat().st_mtime_ns
    assert build_cached(tmp_path, **small) == first  # reused, not rebuilt
    assert (first / "config.json").stat().st_mtime_ns == stamp
    other = build_cached(tmp_path, **{**small, "seed": 1})
    assert other != first and other.parent == first.parent == tmp_path / "tiny"
    assert not [p for p in (tmp_path / "tiny").iterdir() if p.name.startswith(".build-")]


def test_build_via_cli_is_deterministic(tmp_path):
    for d in ("a", "b"):
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "branchgym.cli",
                "tiny",
                "build",
                str(tmp_path / d),
                "--vocab-size",
                "400",
                "--hidden",
                "32",
                "--layers",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr[-2000:]
        assert "tiny model written" in r.stdout
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (
        tmp_path / "b" / "tokenizer.json"
    ).read_bytes()
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (
        tmp_path / "b" / "model.safetensors"
    ).read_bytes()


@pytest.mark.parametrize(
    "kw, needle",
    [
        ({"vocab_size": 100}, "too small"),
        ({"hidden": 48}, "multiple of head_dim"),
        ({"kv_heads": 3, "hidden": 64}, "must divide"),
        ({"layers": 0}, "layers"),
        ({"pretrain_steps": -1}, "pretrain_steps"),
    ],
)
def test_bad_tiny_config(kw, needle):
    with pytest.raises(ConfigError, match=needle):
        TinyConfig(**kw)


def test_unknown_build_option(tmp_path):
    with pytest.raises(ConfigError, match="unknown tiny-model option"):
        build(tmp_path, hidden_size=64)


def test_importing_agents_stays_light():
    code = (
        "import sys, branchgym.agents as a; a.SamplingParams; a.Trajectory; a.run_episode; "
        "a.PolicyAgent; bad = {'torch', 'transformers', 'vllm', 'docker'} & set(sys.modules); "
        "print(sorted(bad))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
