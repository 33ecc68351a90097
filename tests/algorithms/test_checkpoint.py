"""branchgym.algorithms.checkpoint without a trainer: the manifest, verification and fallback on
a plain state of tensors (the trainer-level cases are in tests/hostile/test_checkpoint.py)."""

from __future__ import annotations

import hashlib
import json
import warnings

import pytest
import torch

from branchgym.algorithms.checkpoint import (
    BadCheckpoint,
    CheckpointWarning,
    latest_checkpoint,
    resume,
    save_checkpoint,
    verify_checkpoint,
)
from branchgym.errors import CheckpointError, ConfigError


def _state(step: int, scale: float = 1.0) -> dict:
    w = torch.full((3, 2), scale)
    return {"step": step, "model": {"w": w}, "optimizer": {"state": {0: {"exp_avg": w * 0}},
                                                           "param_groups": [{"params": [0]}]},
            "scheduler": {}, "rng": {}, "policy_generator": torch.zeros(4, dtype=torch.uint8),
            "sampler": {}, "tree_rng": {}, "h_init_store": {}, "algo": "grpo"}


def test_manifest_records_size_checksum_and_config(tmp_path) -> None:
    path = save_checkpoint(tmp_path, 3, _state(3), config={"lr": 1e-3, "algo": "grpo"})
    manifest = json.loads((path / "manifest.json").read_text())
    data = (path / "state.pt").read_bytes()
    assert manifest["step"] == 3 and manifest["bytes"] == len(data)
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["config"] == {"lr": 1e-3, "algo": "grpo"}
    assert (path / "DONE").read_text() == "3"


def test_only_step_directories_count_and_the_newest_keep_survive(tmp_path) -> None:
    (tmp_path / "checkpoints" / "step-000009.bak").mkdir(parents=True)
    (tmp_path / "checkpoints" / "step-000009.bak" / "DONE").write_text("9")
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, _state(step), keep=2)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["step-000002", "step-000003", "step-000009.bak"]
    assert latest_checkpoint(tmp_path).name == "step-000003"


def test_verify_checks_shapes_against_the_model(tmp_path) -> None:
    path = save_checkpoint(tmp_path, 1, _state(1))
    assert verify_checkpoint(path, reference={"w": torch.zeros(3, 2)},
                             param_shapes=[(3, 2)])["state"]["step"] == 1
    with pytest.raises(BadCheckpoint, match=r"shape \(3, 2\).*this model's is \(2, 3\)"):
        verify_checkpoint(path, reference={"w": torch.zeros(2, 3)})
    with pytest.raises(BadCheckpoint, match="optimizer exp_avg of parameter 0"):
        verify_checkpoint(path, param_shapes=[(6,)])


def test_resume_falls_back_and_reports_each_file(tmp_path) -> None:
    save_checkpoint(tmp_path, 1, _state(1, 1.0), keep=5)
    newest = save_checkpoint(tmp_path, 2, _state(2, float("inf")), keep=5)
    got = []
    expected = f"{newest}.*not finite.*resuming from .*step-000001"
    with pytest.warns(CheckpointWarning, match=expected):
        path = resume(tmp_path, got.append)
    assert path.name == "step-000001" and got[0]["step"] == 1
    (path / "state.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="(?s)step-000002.*step-000001.*--out"):
        resume(tmp_path, got.append)


def test_resume_passes_config_errors_through_and_notes_config_changes(tmp_path) -> None:
    save_checkpoint(tmp_path, 1, _state(1), config={"lr": 0.1, "steps": 4})

    def refuse(state: dict) -> None:
        raise ConfigError("another algorithm's run")

    with pytest.raises(ConfigError, match="another algorithm"):
        resume(tmp_path, refuse)
    with pytest.warns(CheckpointWarning, match=r"different config: \['lr'\]"):
        resume(tmp_path, lambda s: None, config={"lr": 0.2, "steps": 4})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resume(tmp_path / "nothing-here", lambda s: None) is None
