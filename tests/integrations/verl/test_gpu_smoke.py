"""Two verl training steps of the branchgym recipe on a CUDA GPU (marker ``gpu``: skipped on a
machine without CUDA), and, everywhere, the check that the smoke run's config composes and
passes branchgym's and verl's start-up validation."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "examples" / "verl" / "gpu_smoke.py"


def smoke_module():
    spec = importlib.util.spec_from_file_location("verl_gpu_smoke", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["aepo", "arpo", "grpo"])
def test_smoke_config_passes_start_up_checks(algo: str, tmp_path) -> None:
    pytest.importorskip("verl", reason="pip install --no-deps verl==0.9.1 (branchgym[verl])")
    from hydra import compose, initialize_config_dir

    import branchgym.integrations.verl as pkg
    from branchgym.integrations.verl.data import build_rows, write_parquet
    from branchgym.integrations.verl.recipe import prepare

    agent = "branchgym" if algo == "grpo" else "branchgym_tree"
    data = write_parquet(build_rows("WebSearch-Offline-v0", split="smoke", agent=agent, limit=2),
                         tmp_path / "d.parquet")
    ov = smoke_module().overrides(algo, tmp_path / "model", data, data, 2, tmp_path)
    with initialize_config_dir(config_dir=os.path.join(os.path.dirname(pkg.__file__), "configs"),
                               version_base=None):
        cfg = compose(config_name=f"{algo}_qwen3_8b_1node", overrides=ov)
    prepare(cfg)
    assert cfg.trainer.total_training_steps == 2 and cfg.trainer.n_gpus_per_node == 1


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU (vLLM rollout + FSDP actor); "
                    "run `python examples/verl/gpu_smoke.py` on a GPU machine")
@pytest.mark.parametrize("algo", ["aepo"])
def test_two_training_steps_on_gpu(algo: str, tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--algo", algo, "--workdir", str(tmp_path), "--steps", "2"],
        capture_output=True, text=True, timeout=1800, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert '"steps_logged": [1, 2]' in proc.stdout
