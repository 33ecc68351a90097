"""What the flat and tree rollouts add around the engine's round loop: starting episodes on a task.

The round loop itself (one batched generation, concurrent tool calls, exact token ids) is
:func:`branchgym.agents.loop.run_round`, shared with ``branchgym eval`` and ``run_episodes``;
``PhaseTimer`` and ``segment_entropy_of`` are re-exported from there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from branchgym.agents.loop import EntropySource, LiveEpisode, PhaseTimer, segment_entropy_of

__all__ = ["PhaseTimer", "EpisodeFactory", "segment_entropy_of", "EntropySource"]


class EpisodeFactory:
    """Starts episodes of one env kind on a given task: ``factory(task_id) -> LiveEpisode``.

    ``make_env()`` builds a fresh env (``gym.make(id, **kwargs)``) or an
    :class:`~branchgym.envs.handle.EnvHandle`; every episode gets its own (started with
    ``options={"task_id": ...}``) so that trajectories never share tool state.
    """

    def __init__(
        self,
        make_env: Callable[[], Any],
        generator: Any,
        *,
        max_response_tokens: int,
        extra_stop: Sequence[str] = (),
        timer: PhaseTimer | None = None,
    ) -> None:
        self.make_env = make_env
        self.generator = generator
        self.max_response_tokens = max_response_tokens
        self.extra_stop = tuple(extra_stop)
        self.timer = timer or PhaseTimer()

    def __call__(self, task_id: str, seed: int | None = None) -> LiveEpisode:
        t0 = time.perf_counter()
        ep = LiveEpisode.start(
            self.make_env(), self.generator, seed=seed, options={"task_id": task_id},
            extra_stop=self.extra_stop, max_response_tokens=self.max_response_tokens,
        )
        self.timer.add("reset", time.perf_counter() - t0)
        return ep
