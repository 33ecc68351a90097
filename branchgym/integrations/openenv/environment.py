"""A branchgym env as an OpenEnv ``Environment``: one instance per WebSocket session.

The wire types are small pydantic models in OpenEnv's style:

- :class:`BranchAction` ``{"text": str}``: the agent's text for one turn (a tool call or an
  answer, in the env's protocol).
- :class:`BranchObservation`: ``text`` (what ``gymnasium``'s ``step``/``reset`` returned as the
  observation), ``terminated``, ``truncated``, ``info`` (the env's ``info`` dict, made
  JSON-safe), plus OpenEnv's ``reward`` and ``done`` (``terminated or truncated``).
- :class:`BranchState`: the env id, the episode id, the task id, the turn and the step count.

The branchgym env (``gym.make(env_id, **env_kwargs)``) is built at the first ``reset`` and kept for
the session; the python tool opens its sandbox session at its first call and ``close()`` (the
server calls it when the session ends, the client disconnects or the server shuts down) releases
it. ``fork()`` copies the whole wrapper stack with :func:`branchgym.envs.clone.clone`, which forks
the sandbox session on this server's host (the clone-over-the-wire extension, see
:mod:`branchgym.integrations.openenv.server`).
"""

from __future__ import annotations

import math
import threading
import uuid
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

import gymnasium as gym
from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import Action, EnvironmentMetadata, Observation, State
from pydantic import Field

from branchgym.errors import ConfigError, ResetNeeded

__all__ = ["BranchAction", "BranchObservation", "BranchState", "BranchEnvironment", "ServeConfig",
           "jsonable", "RESET_KEYS"]

#: What a ``reset`` message's ``data`` may hold.
RESET_KEYS = ("seed", "episode_id", "task_id", "index", "split")


class BranchAction(Action):
    """One turn of the agent: the text it wrote (a tool call or an answer)."""

    text: str = Field(..., description="the agent's text for one turn, e.g. '<search>q</search>'")


class BranchObservation(Observation):
    """What ``reset``/``step`` of the branchgym env returned, JSON-safe."""

    text: str = Field(default="", description="the observation string")
    terminated: bool = Field(default=False, description="the episode ended with an answer")
    truncated: bool = Field(default=False, description="a limit ended the episode")
    info: dict[str, Any] = Field(default_factory=dict, description="the env's info dict")


class BranchState(State):
    """Where the session's episode stands."""

    env_id: str = ""
    task_id: Optional[str] = None
    turn: int = 0
    done: bool = True


@dataclass(frozen=True)
class ServeConfig:
    """What every session of one server builds: ``gym.make(env_id, **env_kwargs)``."""

    env_id: str
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def make(self, split: str | None = None) -> gym.Env[Any, Any]:
        kwargs = dict(self.env_kwargs)
        if split is not None:
            kwargs["split"] = split
        return gym.make(self.env_id, **kwargs)


def jsonable(obj: Any) -> Any:
    """``obj`` with tuples as lists, numpy scalars and arrays as Python values, non-finite floats
    as strings (JSON has no NaN), and anything else unknown as its ``str``."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    item = getattr(obj, "tolist", None)  # numpy scalars and arrays
    if callable(item):
        return jsonable(item())
    return str(obj)


# Every live instance, so that shutdown can close what the server did not (see server.py).
_LIVE: weakref.WeakSet[BranchEnvironment] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


def live_environments() -> list[BranchEnvironment]:
    with _LIVE_LOCK:
        return list(_LIVE)


class BranchEnvironment(Environment[BranchAction, BranchObservation, BranchState]):
    """One session's branchgym env behind OpenEnv's ``reset``/``step``/``state``.

    ``reset`` accepts ``seed``, ``episode_id``, and a task: ``task_id`` or ``index`` (within
    ``split``, default the env's own split). A different ``split`` rebuilds the env on it.
    Task discovery (``list_splits``, ``list_tasks``, ``num_tasks``, ``get_task``,
    ``get_task_range``) reads the env's task source; task specs carry the id, index and question,
    not the gold answers.
    """

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self, config: ServeConfig) -> None:
        super().__init__()
        self.config = config
        self._env: gym.Env[Any, Any] | None = None
        self._split: str | None = None
        self._state = BranchState(env_id=config.env_id)
        self._closed = False
        with _LIVE_LOCK:
            _LIVE.add(self)

    # -- the OpenEnv API ---------------------------------------------------------------------------
    def reset(self, seed: Optional[int] = None, episode_id: Optional[str] = None,
              task_id: Optional[str] = None, index: Optional[int] = None,
              split: Optional[str] = None, **unknown: Any) -> BranchObservation:
        if unknown:
            raise ConfigError(f"reset got unknown field(s) {sorted(unknown)}; a reset message's "
                              f"data may hold {list(RESET_KEYS)}, e.g. {{'task_id': '...'}}.")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ConfigError(f"reset seed={seed!r} must be an int >= 0 or left out.")
        if task_id is not None and index is not None:
            raise ConfigError(f"reset got task_id={task_id!r} and index={index!r}; give one.")
        options = {"task_id": task_id} if task_id is not None else (
            {"index": index} if index is not None else None)
        env = self._env_for(split)
        try:
            obs, info = env.reset(seed=seed, options=options)
        except BaseException:
            # A stack whose reset raised is not reused: gymnasium's passive env checker, after
            # a failed first reset, breaks the next step. The next reset builds a fresh env.
            self._env = None
            self._state = BranchState(env_id=self.config.env_id)
            env.close()
            raise
        task = info.get("task") or {}
        self._state = BranchState(env_id=self.config.env_id,
                                  episode_id=episode_id or str(uuid.uuid4()),
                                  task_id=task.get("id"), turn=0, step_count=0, done=False)
        proto = getattr(env.unwrapped, "protocol", None)
        meta = {"stop_strings": list(getattr(proto, "stop_strings", ()) or ())}
        return BranchObservation(text=obs, info=jsonable(info), reward=None, done=False,
                                 metadata=meta)

    def step(self, action: BranchAction, timeout_s: Optional[float] = None,
             **kwargs: Any) -> BranchObservation:
        if self._env is None or self._state.done:
            raise ResetNeeded("step before reset, or after the episode ended: send a reset "
                              "message (e.g. {'type': 'reset', 'data': {'index': 0}}) first.")
        obs, reward, terminated, truncated, info = self._env.step(action.text)
        self._state.step_count += 1
        self._state.turn = int(info.get("turn", self._state.turn + 1))
        self._state.done = bool(terminated or truncated)
        return BranchObservation(text=obs, reward=float(reward), done=self._state.done,
                                 terminated=bool(terminated), truncated=bool(truncated),
                                 info=jsonable(info))

    @property
    def state(self) -> BranchState:
        return self._state

    def get_metadata(self) -> EnvironmentMetadata:
        return EnvironmentMetadata(
            name=self.config.env_id,
            description=f"branchgym env {self.config.env_id} "
                        f"(kwargs {dict(self.config.env_kwargs)}); actions are {{'text': ...}}, "
                        "sessions can be cloned (branchgym extension)",
            version="0")

    # -- clone over the wire -------------------------------------------------------------------
    def fork(self) -> tuple[gym.Env[Any, Any], BranchState, str | None]:
        """A copy of this session's env stack with an equal future (sandbox session forked),
        with the episode's state and split, for :meth:`adopt` in another session."""
        if self._env is None or self._state.done:
            raise ResetNeeded("clone needs a live episode: reset the session first (a finished "
                              "episode has nothing left to branch).")
        from branchgym.envs.clone import clone

        return clone(self._env), self._state.model_copy(deep=True), self._split

    def adopt(self, env: gym.Env[Any, Any], state: BranchState, split: str | None) -> None:
        """Make ``env`` (from another session's :meth:`fork`) this session's env."""
        if self._env is not None:
            self._env.close()
        self._env, self._split = env, split
        self._state = state.model_copy(deep=True)

    @property
    def has_open_env(self) -> bool:
        return self._env is not None

    def close(self) -> None:
        env, self._env = self._env, None
        self._closed = True
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if env is not None:
            env.close()

    # -- task discovery (OpenEnv's task API) ------------------------------------------------------
    def _source(self) -> Any:
        """The env's task source; OpenEnv's task routes answer 501 (not supported) for an env
        without one, which is what its server does on ``NotImplementedError``."""
        env = self._env if self._env is not None else self.config.make()
        try:
            source = getattr(env.unwrapped, "source", None)
        finally:
            if env is not self._env:  # built only to read the source (OpenEnv makes one per call)
                env.close()
        if source is None:
            raise NotImplementedError(f"{self.config.env_id} has no task source to list tasks from")
        return source

    def list_splits(self) -> list[str]:
        return list(self._source().splits)

    def _tasks(self, split: str) -> list[Any]:
        source = self._source()
        if split not in source.splits:
            from fastapi import HTTPException

            raise HTTPException(status_code=404, detail=f"split {split!r} is unknown; this env's "
                                f"splits are {list(source.splits)}")
        return source.tasks(split)

    def list_tasks(self, split: str) -> list[dict[str, Any]]:
        return [_spec(t, i) for i, t in enumerate(self._tasks(split))]

    def num_tasks(self, split: str) -> int:
        return len(self._tasks(split))

    def get_task(self, split: str, index: int) -> dict[str, Any]:
        tasks = self._tasks(split)
        if not 0 <= index < len(tasks):
            raise IndexError(index)
        return _spec(tasks[index], index)

    def get_task_range(self, split: str, start: int | None = None,
                       stop: int | None = None) -> list[dict[str, Any]]:
        tasks = self._tasks(split)
        lo, hi, _ = slice(start, stop).indices(len(tasks))
        return [_spec(tasks[i], i) for i in range(lo, hi)]

    # -- helpers ---------------------------------------------------------------------------------
    def _env_for(self, split: str | None) -> gym.Env[Any, Any]:
        if split is not None and not isinstance(split, str):
            raise ConfigError(f"reset split={split!r} must be a split name, e.g. 'test'.")
        if self._env is None or (split is not None and split != self._split):
            new = self.config.make(split)
            if self._env is not None:
                self._env.close()
            self._env, self._split = new, split
        return self._env

    def __repr__(self) -> str:
        return f"BranchEnvironment({self.config.env_id!r}, task={self._state.task_id!r})"


def _spec(task: Any, index: int) -> dict[str, Any]:
    return {"id": task.id, "index": index, "question": task.question}
