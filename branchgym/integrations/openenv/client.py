"""Clients of ``branchgym serve``: an OpenEnv ``EnvClient`` with ``clone``, and a remote env handle.

- :class:`BranchEnvClient` is OpenEnv's own :class:`~openenv.core.env_client.EnvClient` (async
  first, ``.sync()`` for blocking use) typed with branchgym's wire models, plus ``clone()``: it
  sends the ``{"type": "clone"}`` extension frame and returns a new client on the cloned session
  (see :mod:`branchgym.integrations.openenv.server`).
- :class:`RemoteEnvHandle` implements :class:`branchgym.envs.handle.EnvHandle` over a sync
  client, so the rollout engine (flat and tree rollouts, ``run_episodes``) generates in this
  process while envs and sandboxes live on the server; ``clone()`` forks on the server.

>>> from branchgym.integrations.openenv import RemoteEnvHandle       # doctest: +SKIP
>>> make_env = lambda: RemoteEnvHandle("http://127.0.0.1:8000")
>>> batch = tree_rollout(make_env, policy, task_ids, params, branch=...)
"""

from __future__ import annotations

from typing import Any

from openenv.core.client_types import StepResult
from openenv.core.env_client import EnvClient

from branchgym.errors import CloneNotSupported, ConfigError, EnvError, ResetNeeded, SandboxError
from branchgym.integrations.openenv.environment import (
    RESET_KEYS,
    BranchAction,
    BranchObservation,
    BranchState,
)

__all__ = ["BranchEnvClient", "RemoteEnvHandle", "CloneRefused"]

_ERRORS = {"SandboxError": SandboxError, "CloneNotSupported": CloneNotSupported,
           "ResetNeeded": ResetNeeded, "ConfigError": ConfigError}


class CloneRefused(EnvError):
    """The server answered a clone request with an error (the message says why)."""


def _clone_error(data: dict[str, Any]) -> Exception:
    kind = _ERRORS.get(str(data.get("error_type")), CloneRefused)
    return kind(f"the server refused to clone this session: {data.get('message')} "
                f"(code {data.get('code')})")


class BranchEnvClient(EnvClient[BranchAction, BranchObservation, BranchState]):
    """OpenEnv client of a ``branchgym serve`` server (``ws://host:port`` or ``http://...``).

    ``step`` takes a :class:`BranchAction`, a dict ``{"text": ...}`` or the text itself.
    ``clone()`` returns a client on a new server session whose future equals this one's: in sync
    use (``client.sync()``) a connected ``SyncEnvClient``; in async use an awaitable of an
    ``BranchEnvClient`` that connects on its first call. Closing one never closes the other.
    """

    def _step_payload(self, action: BranchAction | dict[str, Any] | str) -> dict[str, Any]:
        if isinstance(action, str):
            return {"text": action}
        if isinstance(action, BranchAction):
            return action.model_dump()
        return dict(action)

    def _parse_result(self, payload: dict[str, Any]) -> StepResult[BranchObservation]:
        obs = dict(payload.get("observation") or {})
        obs["reward"], obs["done"] = payload.get("reward"), bool(payload.get("done", False))
        observation = BranchObservation.model_validate(obs)
        return StepResult(observation=observation, reward=observation.reward,
                          done=observation.done, metadata=payload.get("metadata"))

    def _parse_state(self, payload: dict[str, Any]) -> BranchState:
        return BranchState.model_validate(payload)

    async def _clone_async(self) -> BranchEnvClient:
        """Ask the server to fork this session; a new (unconnected) client on the copy."""
        await self._send({"type": "clone"})
        reply = await self._receive()
        if reply.get("type") == "error":
            raise _clone_error(reply.get("data") or {})
        if reply.get("type") != "clone":
            raise CloneRefused(f"unexpected reply to a clone frame: {reply!r}; is this server "
                               "`branchgym serve` (a plain OpenEnv server cannot clone)?")
        child = self._create_session_client()
        child._ws_url = f"{child._ws_url}?clone={reply['data']['clone_id']}"
        return child

    def clone(self) -> Any:
        if self._execution_mode == "sync":
            child = self._run_sync(self._clone_async)
            sync = child.sync()
            sync.connect()
            return sync
        return self._dispatch(self._clone_async)


class RemoteEnvHandle:
    """An :class:`~branchgym.envs.handle.EnvHandle` on a ``branchgym serve`` session.

    Args:
        base_url: the server, e.g. ``"http://127.0.0.1:8000"``.
        message_timeout_s: how long one reset/step/clone may take on the server (a sandboxed
            python call can take seconds).
        client: an already connected sync client (what :meth:`clone` passes on).
    """

    def __init__(self, base_url: str | None = None, *, message_timeout_s: float = 300.0,
                 client: Any = None, stop_strings: tuple[str, ...] = ()) -> None:
        if client is None:
            if not base_url:
                raise ConfigError("RemoteEnvHandle needs base_url='http://host:port' of a "
                                  "`branchgym serve` server (or client=).")
            client = BranchEnvClient(base_url=base_url, message_timeout_s=message_timeout_s).sync()
            client.connect()
        self._client = client
        self._closed = False
        self.stop_strings: tuple[str, ...] = tuple(stop_strings)

    def start(self, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        data: dict[str, Any] = dict(options or {})
        bad = set(data) - set(RESET_KEYS)
        if bad:
            raise ConfigError(f"start(options={options!r}): supported keys are "
                              f"{[k for k in RESET_KEYS if k != 'seed']}.")
        if seed is not None:
            data["seed"] = seed
        result = self._client.reset(**data)
        obs = result.observation
        self.stop_strings = tuple((obs.metadata or {}).get("stop_strings", ()))
        return obs.text, obs.info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        obs = self._client.step(BranchAction(text=action)).observation
        return obs.text, float(obs.reward or 0.0), obs.terminated, obs.truncated, obs.info

    def clone(self) -> RemoteEnvHandle:
        return RemoteEnvHandle(client=self._client.clone(), stop_strings=self.stop_strings)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._client.close()

    def __repr__(self) -> str:
        return f"RemoteEnvHandle({self._client.async_client.base_url!r})"
