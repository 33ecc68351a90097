"""Damaged training checkpoints: resume verifies each one, falls back to the newest intact one
with a warning naming the bad file, or stops with an error naming every file and the fix."""

from __future__ import annotations

import random
import shutil
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from branchgym.algorithms.checkpoint import load_checkpoint, save_checkpoint
from branchgym.algorithms.train_config import preset
from branchgym.algorithms.trainer import Trainer
from branchgym.errors import CheckpointError, ConfigError

ENV = "branchgym.algorithms.quickstart_task:make_lookup_env"
SMALL = dict(env=ENV, env_kwargs={"reward": "arpo_train"}, split="smoke", steps=2,
             prompts_per_step=2, group_size=4, max_new_tokens=24, max_response_tokens=64, lr=1e-3,
             progress=False, threads=1, checkpoint_every=1, tensorboard=False, plots=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, Path]:
    """A finished 2-step run with checkpoints at steps 1 and 2: (model dir, run dir)."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "algorithms" / "rollout"))
    from tinycache import sft_tiny_dir

    model = sft_tiny_dir()
    out = tmp_path_factory.mktemp("ckpt") / "run"
    trainer = Trainer(preset("grpo", model=str(model), out=str(out), **SMALL))
    try:
        trainer.run()
    finally:
        trainer.close()
    return model, out


def _step_dir(out: Path, step: int) -> Path:
    return out / "checkpoints" / f"step-{step:06d}"


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    rng = random.Random(0)
    for _ in range(40):
        pos = rng.randrange(len(data) // 4, len(data))  # inside the tensors, past the header
        data[pos] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))


def _resave(edit: Callable[[dict], object]) -> Callable[[Path], None]:
    """A checkpoint written *through* save_checkpoint (so its checksum matches) with bad content:
    a buggy or diverged trainer, not a damaged disk."""
    def damage(step_dir: Path) -> None:
        state = load_checkpoint(step_dir)
        new = edit(state)
        save_checkpoint(step_dir.parent.parent, 2, state if new is None else new, keep=5)
    return damage


def _nan(state: dict) -> None:
    name = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][name] = torch.full_like(state["model"][name], float("nan"))


def _reshape(state: dict) -> None:
    name = next(k for k, v in state["model"].items() if v.dim() == 2)
    state["model"][name] = state["model"][name][:, :-1].clone()


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "flipped-bytes": (lambda d: _flip(d / "state.pt"), "checksum"),
    "truncated": (lambda d: (d / "state.pt").write_bytes((d / "state.pt").read_bytes()[:5000]),
                  "state.pt"),
    "empty": (lambda d: (d / "state.pt").write_bytes(b""), "empty"),
    "missing": (lambda d: (d / "state.pt").unlink(), "missing"),
    "nan-weights": (_resave(_nan), "not finite"),
    "step-1e6": (_resave(lambda s: s.update(step=10**6)), "step"),
    "wrong-shape": (_resave(_reshape), "shape"),
    "no-model": (_resave(lambda s: s.pop("model")), "model"),
    "not-a-dict": (_resave(lambda s: [1, 2, 3]), "dict"),
}


def _trainer(model: Path, out: Path) -> Trainer:
    return Trainer(preset("grpo", model=str(model), out=str(out), **SMALL))


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous(run, tmp_path, damage) -> None:
    model, pristine = run
    out = tmp_path / "run"
    shutil.copytree(pristine, out)
    apply, reason = DAMAGE[damage]
    apply(_step_dir(out, 2))
    good = load_checkpoint(_step_dir(out, 1))
    with pytest.warns(UserWarning) as caught:
        trainer = _trainer(model, out)
    try:
        text = "\n".join(str(w.message) for w in caught)
        assert str(_step_dir(out, 2)) in text and reason in text, text
        assert "resuming from" in text and str(_step_dir(out, 1)) in text, text
        assert trainer.step == 1
        for name, value in trainer.model.state_dict().items():
            assert torch.equal(value, good["model"][name]), name
    finally:
        trainer.close()


def test_training_goes_on_from_the_fallback_and_rewrites_the_bad_checkpoint(run, tmp_path) -> None:
    model, pristine = run
    out = tmp_path / "run"
    shutil.copytree(pristine, out)
    _flip(_step_dir(out, 2) / "state.pt")
    with pytest.warns(UserWarning, match="checksum"):
        trainer = _trainer(model, out)
    try:
        trainer.run()
    finally:
        trainer.close()
    state = load_checkpoint(_step_dir(out, 2))  # rewritten by the resumed run: intact again
    assert state["step"] == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean resume warns about nothing
        again = _trainer(model, out)
    assert again.step == 2
    again.close()


def test_no_intact_checkpoint_is_an_error_naming_each_file_and_the_fix(run, tmp_path) -> None:
    model, pristine = run
    out = tmp_path / "run"
    shutil.copytree(pristine, out)
    _flip(_step_dir(out, 2) / "state.pt")
    (_step_dir(out, 1) / "state.pt").write_bytes(b"")
    with pytest.raises(CheckpointError) as err:
        _trainer(model, out)
    text = str(err.value)
    assert str(_step_dir(out, 2)) in text and str(_step_dir(out, 1)) in text
    assert "checksum" in text and "empty" in text
    assert "--out" in text and str(out / "checkpoints") in text  # the fix: start over elsewhere


def test_a_checkpoint_from_before_checksums_still_resumes(run, tmp_path) -> None:
    """Checkpoints written before manifests: no checksum to verify, so the content checks
    (keys, shapes, finite values, step) decide, with a warning saying so."""
    model, pristine = run
    out = tmp_path / "run"
    shutil.copytree(pristine, out)
    for step in (1, 2):
        (_step_dir(out, step) / "manifest.json").unlink()
    with pytest.warns(UserWarning, match="no checksum"):
        trainer = _trainer(model, out)
    assert trainer.step == 2
    trainer.close()


def test_another_algorithms_run_is_a_config_error_not_a_fallback(run, tmp_path) -> None:
    model, pristine = run
    out = tmp_path / "run"
    shutil.copytree(pristine, out)
    with pytest.raises(ConfigError, match="algo='grpo', not 'empg'"):
        Trainer(preset("empg", model=str(model), out=str(out), **SMALL))


class _Planted:
    """An object whose unpickling calls ``open(marker, "w")``: a forged checkpoint's payload."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_forged_checkpoint_runs_no_code_when_loaded(run, tmp_path) -> None:
    """A checkpoint with a valid checksum (written by the forger) whose pickle calls a function:
    resume unpickles tensors and plain data only, refuses it and falls back."""
    model, pristine = run
    out = tmp_path / "run"
    shutil.copytree(pristine, out)
    marker = tmp_path / "planted"
    _resave(lambda s: s.update(h_init_store={0: _Planted(marker)}))(_step_dir(out, 2))
    with pytest.warns(UserWarning, match="cannot be read"):
        trainer = _trainer(model, out)
    assert not marker.exists(), "unpickling the checkpoint ran the planted call"
    assert trainer.step == 1
    trainer.close()
