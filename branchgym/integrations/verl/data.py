"""The parquet verl's ``RLHFDataset`` reads, one row per task of a branchgym env's split.

verl (0.9.1) passes every column of a row to the agent loop's ``run(**kwargs)``: the dataset's
``__getitem__`` returns the row as a dict (plus ``raw_prompt`` built from the ``prompt``
column, ``index``/``tools_kwargs``/``interaction_kwargs`` from ``extra_info``), the trainer
keeps the non-tensor fields in the batch, and the agent-loop worker calls
``run(sampling_params, **row)`` for the loop named by the row's ``agent_name``. Columns written:

- ``prompt``: the env's opening chat (``reset(options={"task_id": ...})``'s ``info["messages"]``:
  system prompt with the tool protocol, then the question), used by verl for ``raw_prompt`` and
  for ``data.filter_overlong_prompts``;
- ``data_source``: ``branchgym/<env id>`` (verl groups validation metrics by it);
- ``agent_name``: ``branchgym`` (flat episodes) or ``branchgym_tree`` (entropy-branched trees);
- ``extra_info``: ``{"index", "env_id", "task_id", "env_kwargs" (JSON text), "split"}``; the
  agent loop reads ``env_id``, ``task_id`` and ``env_kwargs`` from it (``split`` is put in
  ``env_kwargs`` too, which is where the loop takes it from);
- ``reward_model``: ``{"style": "env", "ground_truth": ""}``: the env scores every episode, so
  no reward function is needed (verl's reward manager is never asked for these rows).

This module imports neither verl nor torch (pandas and pyarrow: ``pip install 'branchgym[verl]'``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from branchgym.errors import ConfigError

__all__ = ["AGENTS", "build_rows", "write_parquet"]

AGENTS = ("branchgym", "branchgym_tree")


def build_rows(
    env_id: str,
    *,
    split: str = "train",
    agent: str = "branchgym",
    env_kwargs: Mapping[str, Any] | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """One verl row per task of ``env_id``'s ``split`` (the first ``limit`` tasks if given)."""
    from branchgym.algorithms.trainer import make_env_factory

    if agent not in AGENTS:
        raise ConfigError(
            f"agent {agent!r} is not a branchgym agent loop; use one of {list(AGENTS)}."
        )
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be >= 1 (or omitted for the whole split), got {limit!r}.")
    kwargs = dict(env_kwargs or {})
    if "split" in kwargs and kwargs["split"] != split:
        raise ConfigError(
            f"env_kwargs has split={kwargs['split']!r} but --split is {split!r}; "
            "give the split once."
        )
    kwargs.pop("split", None)
    try:
        kwargs_json = json.dumps({**kwargs, "split": split}, sort_keys=True)
    except TypeError as exc:
        raise ConfigError(
            f"env_kwargs must be JSON values (they travel in the parquet): {exc}"
        ) from exc
    env = make_env_factory(env_id, kwargs, split)()
    try:
        tasks = list(env.unwrapped.tasks)
        if not tasks:
            raise ConfigError(f"split {split!r} of {env_id} has no tasks; pick another split.")
        rows = []
        for index, task in enumerate(tasks[:limit]):
            _, info = env.reset(options={"task_id": task.id})
            messages = [
                {"role": str(m["role"]), "content": str(m["content"])} for m in info["messages"]
            ]
            rows.append({
                "data_source": f"branchgym/{env_id}",
                "prompt": messages,
                "agent_name": agent,
                "ability": "agent",
                "reward_model": {"style": "env", "ground_truth": ""},
                "extra_info": {
                    "index": index,
                    "env_id": env_id,
                    "task_id": str(task.id),
                    "env_kwargs": kwargs_json,
                    "split": split,
                },
            })
        return rows
    finally:
        env.close()


def write_parquet(rows: list[dict[str, Any]], out: str | Path) -> Path:
    """Write ``rows`` (from :func:`build_rows`) to ``out``; returns the path."""
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "writing verl data needs pandas and pyarrow: pip install 'branchgym[verl]'"
        ) from exc
    if not rows:
        raise ConfigError("no rows to write; the split has no tasks.")
    path = Path(out)
    if path.suffix != ".parquet":
        raise ConfigError(
            f"--out {str(out)!r} must end in .parquet (verl picks the reader by suffix)."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(path, index=False)
    return path
