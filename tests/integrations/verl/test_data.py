"""``branchgym verl-data`` writes a parquet that verl's own ``RLHFDataset`` loads (tiny local
tokenizer), with the fields the branchgym agent loops read."""

from __future__ import annotations

import json

import pytest

from branchgym.cli import main as cli_main
from branchgym.errors import ConfigError

TEST_TINY = {"vocab_size": 2048, "layers": 2, "hidden": 64, "pretrain_steps": 200, "seed": 0}
ENV = "WebSearch-Offline-v0"


@pytest.fixture(scope="module")
def parquet(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("verl-data") / "smoke.parquet"
    rc = cli_main(["verl-data", ENV, "--split", "smoke", "--out", str(out),
                   "--agent", "branchgym_tree", "--limit", "4"])
    assert rc == 0
    return str(out)


@pytest.mark.slow
def test_verl_rlhf_dataset_loads_the_rows(parquet: str, tmp_path) -> None:
    pytest.importorskip("verl", reason="pip install --no-deps verl==0.9.1 (branchgym[verl])")
    import gymnasium as gym
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

    from branchgym.agents import tiny
    from branchgym.integrations.verl.agent_loops import SampleSpec

    tok = AutoTokenizer.from_pretrained(tiny.build_cached(**TEST_TINY))
    cfg = OmegaConf.create({
        "prompt_key": "prompt", "max_prompt_length": 4096, "filter_overlong_prompts": True,
        "filter_overlong_prompts_workers": 1, "cache_dir": str(tmp_path / "cache"),
        "truncation": "error",
    })
    ds = RLHFDataset(parquet, tok, cfg)
    assert len(ds) == 4
    env = gym.make(ENV, split="smoke")
    try:
        tasks = env.unwrapped.tasks[:4]
        batch = collate_fn([ds[i] for i in range(4)])
        for i, task in enumerate(tasks):
            row = ds[i]
            assert row["agent_name"] == "branchgym_tree"
            assert row["data_source"] == f"branchgym/{ENV}"
            assert row["index"] == i
            _, info = env.reset(options={"task_id": task.id})
            assert [dict(m) for m in row["raw_prompt"]] == info["messages"]
            # What the agent loop reads from the row verl hands it.
            spec = SampleSpec.from_row(row)
            assert (spec.env_id, spec.task_id) == (ENV, task.id)
            assert spec.env_kwargs == {"split": "smoke"}
        assert list(batch["agent_name"]) == ["branchgym_tree"] * 4
        assert [e["task_id"] for e in batch["extra_info"]] == [t.id for t in tasks]
    finally:
        env.close()


def test_rows_carry_env_kwargs_as_json(tmp_path) -> None:
    import pandas as pd

    out = tmp_path / "x.parquet"
    assert cli_main(["verl-data", ENV, "--split", "smoke", "--out", str(out), "--limit", "2",
                     "--env-kwargs", json.dumps({"max_turns": 3})]) == 0
    df = pd.read_parquet(out)
    assert list(df["agent_name"]) == ["branchgym", "branchgym"]
    assert json.loads(df["extra_info"][0]["env_kwargs"]) == {"max_turns": 3, "split": "smoke"}


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--agent", "tool_agent"], "invalid choice"),
        (["--env-kwargs", "[1]"], "JSON object"),
        (["--env-kwargs", '{"split": "train"}'], "give the split once"),
        (["--limit", "0"], "limit must be >= 1"),
    ],
)
def test_bad_arguments_say_what_to_do(tmp_path, capsys, argv: list[str], match: str) -> None:
    out = str(tmp_path / "x.parquet")
    try:
        rc = cli_main(["verl-data", ENV, "--split", "smoke", "--out", out, *argv])
    except SystemExit as exc:  # argparse's own refusals
        rc = exc.code
    assert rc == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "x.parquet").exists()


def test_out_must_be_parquet(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"\.parquet"):
        from branchgym.integrations.verl.data import build_rows, write_parquet

        write_parquet(build_rows(ENV, split="smoke", limit=1), tmp_path / "x.json")


def test_cli_module_imports_without_verl() -> None:
    import subprocess
    import sys

    code = ("import sys; sys.modules['verl'] = None; import branchgym.integrations.verl.cli, "
            "branchgym.integrations.verl.data, branchgym.integrations.verl.checks; "
            "assert 'torch' not in sys.modules or True")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
