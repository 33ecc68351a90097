"""The engine's bookkeeping and its tool executor: ``PhaseTimer``, ``ToolSpan``, ``ToolExecutor``.

A round of :func:`branchgym.agents.loop.run_round` hands every tool call (``EnvHandle.step``) of its
live episodes to a :class:`ToolExecutor`, which runs them at the same time on a bounded thread pool
and returns their results in call order; closing finished episodes goes through it as well. See
docs/rollout.md ("Concurrency and the executor knob").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from branchgym.errors import ConfigError

__all__ = ["PhaseTimer", "ToolSpan", "ToolExecutor", "DEFAULT_TOOL_WORKERS"]

DEFAULT_TOOL_WORKERS = 32
"""Most tool calls run at once by default; a round with fewer live episodes uses fewer threads."""


@dataclass(frozen=True)
class ToolSpan:
    """One ``step`` call as the engine ran it: ``perf_counter`` start/end, and its error if any."""

    node_id: int
    round: int
    start: float
    end: float
    error: str | None = None


@dataclass
class PhaseTimer:
    """Seconds per phase (``generation``, ``tools``, ``clone``, ``reset``, ``close``), counters,
    and the span of every tool call (``tool_spans``), which shows whether calls overlapped."""

    seconds: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    tool_spans: list[ToolSpan] = field(default_factory=list)
    rounds: int = 0

    def add(self, phase: str, dt: float) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + dt

    def count(self, key: str, k: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + k

    def timed(self, phase: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        try:
            return fn()
        finally:
            self.add(phase, time.perf_counter() - t0)


class ToolExecutor:
    """Runs a round's tool calls at the same time on at most ``max_workers`` threads.

    ``max_workers=None`` means :data:`DEFAULT_TOOL_WORKERS`; threads start only as calls need them,
    so a round with n calls uses min(n, max_workers). ``max_workers=1`` runs the calls one after
    another in the calling thread (the sequential baseline). Results come back in call order.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and (not isinstance(max_workers, int) or max_workers < 1):
            raise ConfigError(f"tool_workers must be an int >= 1 or None (default {DEFAULT_TOOL_WORKERS}), "
                              f"got {max_workers!r}")
        self.max_workers = max_workers or DEFAULT_TOOL_WORKERS
        self._pool: ThreadPoolExecutor | None = None

    def map(self, calls: Sequence[Callable[[], Any]]) -> list[Any]:
        """``[call() for call in calls]``, run concurrently; a call must not raise."""
        if self.max_workers == 1 or len(calls) <= 1:
            return [call() for call in calls]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="branchgym-tool")
        futures = [self._pool.submit(call) for call in calls]
        return [f.result() for f in futures]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> ToolExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
