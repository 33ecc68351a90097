"""Training checkpoints for exact resume: weights, optimizer, scheduler, every RNG, step.

A checkpoint is a directory ``<out>/checkpoints/step-000012/`` holding ``state.pt`` (one
``torch.save`` of a dict), ``manifest.json`` (the step, the size and SHA-256 of ``state.pt``, and
the run's config) and ``DONE`` (written last, so a run killed while saving never leaves a
checkpoint that looks complete). The RNG states captured are Python's ``random``, NumPy's
global state, torch's CPU (and CUDA) generators, plus the named generators the trainer owns
(the policy's sampling generator, the task sampler, the tree rollout's branch draws), so a
resumed run draws exactly what the uninterrupted run would have drawn.

Resume (:func:`resume`) verifies a checkpoint before anything is loaded from it: the checksum
(before unpickling, which admits tensors and plain data only: ``weights_only=True``), the keys,
the step (the directory's, the manifest's and the state's agree), the weights (the model's
names, shapes and dtypes; every value finite) and the optimizer state (finite, shaped like its
parameters). A checkpoint that fails is skipped with a
:class:`CheckpointWarning` naming the file and what was wrong, and the next older one is tried;
when none is intact, :class:`~branchgym.errors.CheckpointError` names every file and the fix.
Checkpoints written before manifests have no checksum: they are verified by content only (a
warning says so).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
import shutil
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from branchgym.errors import CheckpointError, ConfigError

__all__ = ["capture_global_rng", "restore_global_rng", "save_checkpoint", "latest_checkpoint",
           "load_checkpoint", "verify_checkpoint", "resume", "CheckpointWarning",
           "BadCheckpoint"]

MANIFEST_FORMAT = 1
_STEP_DIR = re.compile(r"step-(\d{6,})")
_KEYS = ("step", "model", "optimizer", "scheduler", "rng", "policy_generator", "sampler",
         "tree_rng", "h_init_store", "algo")


class CheckpointWarning(UserWarning):
    """A checkpoint failed verification and was skipped; an older one is used."""


class BadCheckpoint(Exception):
    """One checkpoint failed verification (internal: :func:`resume` collects these)."""


def capture_global_rng() -> dict[str, Any]:
    """States of Python's, NumPy's and torch's global generators."""
    import torch

    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_global_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_global_rng`."""
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _step_dir(out: Path, step: int) -> Path:
    return out / "checkpoints" / f"step-{step:06d}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def save_checkpoint(out: str | Path, step: int, state: dict[str, Any], *, keep: int = 2,
                    config: Mapping[str, Any] | None = None) -> Path:
    """Write ``state`` as the checkpoint of ``step`` (atomically) and keep the newest ``keep``.

    ``manifest.json`` records the size and SHA-256 of ``state.pt`` and ``config`` (the run's
    config as a dict), so :func:`resume` can verify the bytes before it unpickles them.
    """
    import torch

    out = Path(out)
    final = _step_dir(out, step)
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(state, tmp / "state.pt")
    with open(tmp / "state.pt", "rb+") as f:
        os.fsync(f.fileno())
    manifest = {"format": MANIFEST_FORMAT, "step": step, "file": "state.pt",
                "bytes": (tmp / "state.pt").stat().st_size, "sha256": _sha256(tmp / "state.pt"),
                "config": None if config is None else dict(config)}
    _write_synced(tmp / "manifest.json",
                  json.dumps(manifest, indent=1, sort_keys=True, default=str).encode())
    _write_synced(tmp / "DONE", str(step).encode())
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in _complete(out)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _complete(out: str | Path) -> list[Path]:
    """Checkpoint directories with a ``DONE`` marker, oldest first (by step)."""
    root = Path(out) / "checkpoints"
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir()
             if (m := _STEP_DIR.fullmatch(p.name)) and (p / "DONE").exists()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(out: str | Path) -> Path | None:
    """The newest complete checkpoint directory under ``out`` (not verified), or None."""
    done = _complete(out)
    return done[-1] if done else None


def _safe_globals() -> list[Any]:
    """The non-tensor types a trainer state holds (NumPy's global RNG state is an array)."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # NumPy 1.x
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    dtypes = {type(np.dtype(t)) for t in (np.uint32, np.int64, np.float64, np.uint8)}
    # files written under NumPy 1.x name the function by its old module path
    return [_reconstruct, (_reconstruct, "numpy.core.multiarray._reconstruct"), np.ndarray,
            np.dtype, *dtypes]


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The state dict saved by :func:`save_checkpoint`, unverified (see :func:`resume`).

    Loaded with ``weights_only=True``: tensors, containers, numbers, strings and NumPy arrays
    only, so a forged file cannot run code when it is unpickled.
    """
    import torch

    with torch.serialization.safe_globals(_safe_globals()):
        return torch.load(Path(path) / "state.pt", map_location="cpu", weights_only=True)


def _read_manifest(path: Path, step: int, file: Path) -> dict[str, Any] | None:
    manifest_path = path / "manifest.json"
    if not manifest_path.exists():
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        raise BadCheckpoint(f"{manifest_path} is unreadable ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise BadCheckpoint(f"{manifest_path} is not a format-{MANIFEST_FORMAT} manifest")
    if manifest.get("step") != step:
        raise BadCheckpoint(f"{manifest_path} records step {manifest.get('step')!r}, but the "
                            f"directory is step {step}")
    size = file.stat().st_size
    if manifest.get("bytes") != size:
        raise BadCheckpoint(f"{file} has {size} bytes, but {manifest.get('bytes')!r} were "
                            "written (truncated or replaced)")
    if manifest.get("sha256") != _sha256(file):
        raise BadCheckpoint(f"{file} does not match the checksum recorded when it was saved "
                            "(the file is damaged)")
    return manifest


def _finite(name: str, value: Any) -> None:
    import torch

    if isinstance(value, torch.Tensor):
        if value.is_floating_point() or value.is_complex():
            if not bool(torch.isfinite(value).all()):
                raise BadCheckpoint(f"{name} has values that are not finite (NaN or inf)")
    elif isinstance(value, float) and not math.isfinite(value):
        raise BadCheckpoint(f"{name} = {value!r} is not finite")
    elif isinstance(value, Mapping):
        for k, v in value.items():
            _finite(f"{name}.{k}", v)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _finite(f"{name}[{i}]", v)


def _check_model(weights: Any, reference: Mapping[str, Any] | None) -> None:
    import torch

    if not isinstance(weights, Mapping) or not all(
            isinstance(v, torch.Tensor) for v in weights.values()):
        raise BadCheckpoint("'model' is not a dict of tensors")
    if reference is not None:
        missing, extra = set(reference) - set(weights), set(weights) - set(reference)
        if missing or extra:
            raise BadCheckpoint(f"'model' does not match this model: missing {sorted(missing)[:3]}"
                                f", unexpected {sorted(extra)[:3]}")
        for name, ref in reference.items():
            got = weights[name]
            if got.shape != ref.shape or got.dtype != ref.dtype:
                raise BadCheckpoint(f"weight {name!r} has shape {tuple(got.shape)} {got.dtype}, "
                                    f"this model's is {tuple(ref.shape)} {ref.dtype}")
    _finite("weights", dict(weights))


def _check_optimizer(opt: Any, shapes: list[tuple[int, ...]] | None) -> None:
    if not isinstance(opt, Mapping) or not isinstance(opt.get("state"), Mapping) or not isinstance(
            opt.get("param_groups"), list):
        raise BadCheckpoint("'optimizer' is not an optimizer state dict")
    _finite("optimizer", opt["state"])
    if shapes is None:
        return
    for index, slots in opt["state"].items():
        if not isinstance(index, int) or not 0 <= index < len(shapes) or not isinstance(
                slots, Mapping):
            raise BadCheckpoint(f"optimizer state for parameter {index!r} does not match the "
                                f"model's {len(shapes)} parameters")
        for slot, value in slots.items():
            if getattr(value, "dim", lambda: 0)() > 0 and tuple(value.shape) != shapes[index]:
                raise BadCheckpoint(f"optimizer {slot} of parameter {index} has shape "
                                    f"{tuple(value.shape)}, the parameter's is {shapes[index]}")


def verify_checkpoint(path: str | Path, *, reference: Mapping[str, Any] | None = None,
                      param_shapes: list[tuple[int, ...]] | None = None) -> dict[str, Any]:
    """Load the checkpoint at ``path`` only if it is intact; return its state and manifest.

    Args:
        reference: the model's own ``state_dict()``; the weights must match its names, shapes
            and dtypes.
        param_shapes: the optimizer's parameter shapes, in order.

    Returns:
        ``{"state": ..., "manifest": ... or None}`` (None: written before manifests).

    Raises:
        BadCheckpoint: what is wrong, naming the file.
    """
    path = Path(path)
    match = _STEP_DIR.fullmatch(path.name)
    if match is None:
        raise BadCheckpoint(f"{path} is not a step-NNNNNN checkpoint directory")
    step = int(match.group(1))
    file = path / "state.pt"
    if not file.exists():
        raise BadCheckpoint(f"{file} is missing")
    if file.stat().st_size == 0:
        raise BadCheckpoint(f"{file} is empty")
    manifest = _read_manifest(path, step, file)
    try:
        state = load_checkpoint(path)
    except Exception as exc:  # a damaged pickle raises anything from EOFError to OSError
        raise BadCheckpoint(f"{file} cannot be read ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict):
        raise BadCheckpoint(f"{file} holds a {type(state).__name__}, not a checkpoint dict")
    missing = [k for k in _KEYS if k not in state]
    if missing:
        raise BadCheckpoint(f"{file} lacks {missing}")
    if not isinstance(state["step"], int) or state["step"] != step:
        raise BadCheckpoint(f"{file} says step {state['step']!r}, but it is the checkpoint of "
                            f"step {step}")
    try:
        _check_model(state["model"], reference)
        _check_optimizer(state["optimizer"], param_shapes)
    except BadCheckpoint as exc:
        raise BadCheckpoint(f"{file}: {exc}") from None
    return {"state": state, "manifest": manifest}


def resume(out: str | Path, apply: Callable[[dict[str, Any]], None], *,
           reference: Mapping[str, Any] | None = None,
           param_shapes: list[tuple[int, ...]] | None = None,
           config: Mapping[str, Any] | None = None) -> Path | None:
    """Resume from the newest checkpoint under ``out`` that verifies; None when there is none.

    Each checkpoint, newest first, is verified (:func:`verify_checkpoint`) and then given to
    ``apply(state)``. One that fails either is skipped with a :class:`CheckpointWarning`
    naming the file; a ``ConfigError`` from ``apply`` (a run of another algorithm) is raised as
    is. When the recorded config differs from ``config``, a warning lists the fields.

    Raises:
        CheckpointError: checkpoints exist but none is intact; names each and the fix.
    """
    candidates = _complete(out)[::-1]
    failures: list[str] = []
    for path in candidates:
        try:
            checked = verify_checkpoint(path, reference=reference, param_shapes=param_shapes)
            apply(checked["state"])
        except BadCheckpoint as exc:
            failures.append(str(exc))
            continue
        except ConfigError:
            raise
        except Exception as exc:  # load_state_dict and friends refusing the content
            failures.append(f"{path / 'state.pt'} cannot be loaded ({type(exc).__name__}: "
                            f"{str(exc)[:300]})")
            continue
        notes = list(failures)
        if checked["manifest"] is None:
            notes.append(f"{path} was written before checkpoints had manifests: no checksum to "
                         "verify its bytes; its content checks passed")
        elif config is not None and checked["manifest"].get("config") is not None:
            old, new = checked["manifest"]["config"], json.loads(json.dumps(dict(config),
                                                                            default=str))
            changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            if changed:
                notes.append(f"{path} was saved with a different config: {changed}")
        if notes:
            warnings.warn("; ".join(notes) + f"; resuming from {path}.", CheckpointWarning,
                          stacklevel=2)
        return path
    if not failures:
        return None
    root = Path(out) / "checkpoints"
    raise CheckpointError(
        "no intact checkpoint to resume from:\n  " + "\n  ".join(failures) + "\n"
        f"Start over with another --out, or move {root} away (training restarts from step 0), "
        "or restore the files from a backup."
    )
