"""``branchgym serve``: OpenEnv's own server app over a branchgym env, plus clone over the wire.

The app is OpenEnv's :class:`~openenv.core.env_server.http_server.HTTPEnvServer` routes on a
FastAPI app (``/ws`` sessions, ``/reset``, ``/step``, ``/schema``, ``/health``, the task API
``/{env}/splits`` ...), so OpenEnv's clients (``GenericEnvClient``, TRL, verifiers, NeMo-Gym)
drive it with no branchgym code. Each WebSocket session owns one :class:`BranchEnvironment`
(one branchgym env and, for the python tool, one sandbox session).

**Clone over the wire** (a branchgym extension; plain OpenEnv clients never send it):

1. On a live session the client sends ``{"type": "clone"}``. The server forks that session's
   env on the session's own worker thread (the python tool's sandbox session forks on this
   server's host) and parks the copy under a one-time token:
   ``{"type": "clone", "data": {"clone_id": "<token>", "expires_s": 120}}``.
2. The client opens ``/ws?clone=<token>``. That WebSocket becomes a new session whose env is the
   parked copy: its future equals the original's for the same actions.

A token not adopted within ``clone_ttl_s`` is closed (its sandbox fork released). Errors come
back as OpenEnv error frames ``{"type": "error", "data": {"message", "code", "error_type"}}``.

A small ASGI middleware in front of OpenEnv's ``/ws`` handles the ``clone`` frames (so OpenEnv's
message loop never sees them) and turns binary frames into text (OpenEnv's loop reads text only).
It relies on two hooks of ``HTTPEnvServer`` in openenv 0.10 (``_create_session`` and the
per-session executors); the extra pin is ``openenv==0.10.0``.

``GET /branchgym/stats`` reports open sessions, parked clones, live envs and the sandbox pools'
busy hosts (tests and operators use it to see that nothing leaks).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import secrets
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI
from openenv.core.env_server.http_server import HTTPEnvServer
from openenv.core.env_server.types import WSErrorCode

from branchgym.integrations.openenv.environment import (
    BranchAction,
    BranchEnvironment,
    BranchObservation,
    BranchState,
    ServeConfig,
    live_environments,
)

__all__ = ["BranchEnvServer", "create_app", "serve", "CLONE_TTL_S"]

CLONE_TTL_S = 120.0


@dataclass
class _Connection:
    """One ``/ws`` connection, as the middleware and ``_create_session`` share it."""

    clone_token: str | None = None
    session_id: str | None = None
    env: BranchEnvironment | None = None


@dataclass
class _Parked:
    env: Any
    state: BranchState
    split: str | None
    created: float


_CONNECTION: contextvars.ContextVar[_Connection | None] = contextvars.ContextVar(
    "branchgym_openenv_connection", default=None)


def _error(message: str, code: str, **extra: Any) -> dict[str, Any]:
    return {"type": "error", "data": {"message": message, "code": code, **extra}}


class BranchEnvServer(HTTPEnvServer):
    """OpenEnv's ``HTTPEnvServer`` for one branchgym env id, with session cloning.

    Args:
        config: the env id and its ``gym.make`` kwargs.
        max_sessions: the most WebSocket sessions at once (parked clones count too).
        clone_ttl_s: seconds a parked clone waits for its WebSocket before it is closed.
    """

    def __init__(self, config: ServeConfig, *, max_sessions: int = 16,
                 clone_ttl_s: float = CLONE_TTL_S) -> None:
        super().__init__(functools.partial(BranchEnvironment, config), BranchAction,
                         BranchObservation, max_concurrent_envs=max_sessions,
                         env_name=config.env_id, state_cls=BranchState)
        self.config = config
        self.clone_ttl_s = float(clone_ttl_s)
        self._parked: dict[str, _Parked] = {}
        self._parked_lock = threading.Lock()
        self._sweeper: asyncio.Task[None] | None = None

    # -- sessions ----------------------------------------------------------------------------
    async def _create_session(self) -> tuple[str, Any]:
        conn = _CONNECTION.get()
        parked = None
        if conn is not None and conn.clone_token is not None:
            with self._parked_lock:
                parked = self._parked.pop(conn.clone_token, None)
            if parked is None:
                raise LookupError(
                    f"clone token {conn.clone_token!r} is unknown, already used or expired "
                    f"(tokens live {self.clone_ttl_s:g} s); send {{'type': 'clone'}} on a live "
                    "session for a new one")
        try:
            session_id, env = await super()._create_session()
        except BaseException:
            if parked is not None:
                await asyncio.get_running_loop().run_in_executor(None, parked.env.close)
            raise
        if parked is not None:
            env.adopt(parked.env, parked.state, parked.split)
        if conn is not None:
            conn.session_id, conn.env = session_id, env
        return session_id, env

    async def clone_session(self, conn: _Connection) -> dict[str, Any]:
        """Fork ``conn``'s env and park it; the reply frame (or an error frame)."""
        if conn.session_id is None or conn.env is None:
            return _error("clone needs an open session on this WebSocket",
                          WSErrorCode.SESSION_ERROR)
        with self._parked_lock:
            busy = len(self._sessions) + len(self._parked)
        if busy >= self._max_concurrent_envs:
            return _error(f"cannot clone: the server holds {busy} sessions and parked clones of "
                          f"at most {self._max_concurrent_envs} (--max-sessions)",
                          WSErrorCode.CAPACITY_REACHED, error_type="SandboxError")
        executor = self._session_executors.get(conn.session_id)
        try:
            env, state, split = await asyncio.get_running_loop().run_in_executor(
                executor, conn.env.fork)
        except Exception as exc:
            return _error(str(exc), WSErrorCode.EXECUTION_ERROR, error_type=type(exc).__name__)
        token = secrets.token_urlsafe(18)
        with self._parked_lock:
            self._parked[token] = _Parked(env, state, split, time.monotonic())
        self._update_session_activity(conn.session_id)
        return {"type": "clone", "data": {"clone_id": token, "expires_s": self.clone_ttl_s}}

    def _take_expired(self, now: float | None = None) -> list[_Parked]:
        with self._parked_lock:
            gone = [k for k, p in self._parked.items()
                    if now is None or now - p.created > self.clone_ttl_s]
            return [self._parked.pop(k) for k in gone]

    async def _sweep_parked(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(5.0, self.clone_ttl_s / 4))
            for parked in self._take_expired(time.monotonic()):
                await loop.run_in_executor(None, _close_quietly, parked.env)

    async def close_everything(self) -> None:
        """Close every session's env and every parked clone (server shutdown)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for session_id in list(self._sessions):
            await self._destroy_session(session_id)
        loop = asyncio.get_running_loop()
        for parked in self._take_expired():
            await loop.run_in_executor(None, _close_quietly, parked.env)

    def stats(self) -> dict[str, Any]:
        from branchgym.sandbox import factory

        envs = live_environments()
        pools = [p for p in list(factory._DEFAULT_POOLS.values()) if not p._closed]
        busy = sum(p.stats()["busy"] for p in pools)
        with self._parked_lock:
            parked = len(self._parked)
        return {"env_id": self.config.env_id, "sessions": len(self._sessions),
                "max_sessions": self._max_concurrent_envs, "parked_clones": parked,
                "open_envs": sum(e.has_open_env for e in envs), "sandbox_busy_hosts": busy}

    def register_routes(self, app: FastAPI, mode: Any = "simulation") -> None:
        super().register_routes(app, mode=mode)
        server = self

        async def _start_sweeper() -> None:
            server._sweeper = asyncio.create_task(server._sweep_parked())

        async def _close_all() -> None:
            await server.close_everything()

        app.router.on_startup.append(_start_sweeper)
        app.router.on_shutdown.append(_close_all)

        @app.get("/branchgym/stats", tags=["branchgym"])
        async def branchgym_stats() -> dict[str, Any]:
            return server.stats()


class _Stopped(Exception):
    """A stop signal arrived after uvicorn's own shutdown."""


def _stop(signum: int, frame: Any) -> None:
    raise _Stopped(signum)


def _close_quietly(env: Any) -> None:
    try:
        env.close()
    except Exception:
        pass


class CloneMiddleware:
    """ASGI middleware in front of ``/ws``: answers ``clone`` frames, passes the rest on."""

    def __init__(self, app: Any, server: BranchEnvServer) -> None:
        self.app = app
        self.server = server

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket" or scope.get("path") != "/ws":
            await self.app(scope, receive, send)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        conn = _Connection(clone_token=(query.get("clone") or [None])[0])
        token = _CONNECTION.set(conn)
        server = self.server

        async def receive_frames() -> dict[str, Any]:
            while True:
                message = await receive()
                if message.get("type") != "websocket.receive":
                    return message
                text = message.get("text")
                if text is None:  # a binary frame: OpenEnv's loop reads text only
                    text = (message.get("bytes") or b"").decode("utf-8", errors="replace")
                    message = {"type": "websocket.receive", "text": text}
                is_object = text.lstrip().startswith("{")
                if is_object and "clone" not in text:  # cheap filter: most frames parse once
                    return message
                try:
                    frame = json.loads(text)
                except ValueError:
                    return message  # OpenEnv answers invalid JSON itself
                if not isinstance(frame, dict):  # OpenEnv's loop would end the session
                    reply = _error(f"a frame must be a JSON object like {{'type': 'step', "
                                   f"'data': {{'text': ...}}}}, got {type(frame).__name__}",
                                   WSErrorCode.VALIDATION_ERROR)
                elif frame.get("type") != "clone":
                    return message
                elif set(frame) - {"type", "data"} or frame.get("data") not in (None, {}):
                    reply = _error("a clone frame is exactly {'type': 'clone'}",
                                   WSErrorCode.VALIDATION_ERROR)
                else:
                    reply = await server.clone_session(conn)
                await send({"type": "websocket.send", "text": json.dumps(reply)})

        try:
            await self.app(scope, receive_frames, send)
        finally:
            _CONNECTION.reset(token)


def create_app(env_id: str, env_kwargs: dict[str, Any] | None = None, *, max_sessions: int = 16,
               clone_ttl_s: float = CLONE_TTL_S) -> FastAPI:
    """The FastAPI app serving ``gym.make(env_id, **env_kwargs)`` (one env per session).

    The env is built once here, so a bad id or kwarg fails now with branchgym's message rather
    than at the first session.
    """
    config = ServeConfig(env_id, dict(env_kwargs or {}))
    config.make().close()
    app = FastAPI(title=f"branchgym {env_id} (OpenEnv)",
                  description="OpenEnv env server over a branchgym env; sessions can be cloned "
                              "with a {'type': 'clone'} frame (docs/integrations/openenv.md).")
    server = BranchEnvServer(config, max_sessions=max_sessions, clone_ttl_s=clone_ttl_s)
    server.register_routes(app)
    app.add_middleware(CloneMiddleware, server=server)
    app.state.branchgym_server = server
    return app


def serve(env_id: str, env_kwargs: dict[str, Any] | None = None, *, host: str = "127.0.0.1",
          port: int = 8000, max_sessions: int = 16, clone_ttl_s: float = CLONE_TTL_S,
          log_level: str = "warning") -> None:
    """Run the server until SIGINT/SIGTERM, then close every env and sandbox session.

    uvicorn handles the signals: it closes the WebSockets (each session's env closes), then runs
    the app's shutdown, which closes what is left (parked clones included); a last sweep here
    closes any env still open and the process's sandbox pools.
    """
    import uvicorn

    app = create_app(env_id, env_kwargs, max_sessions=max_sessions, clone_ttl_s=clone_ttl_s)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level,
                            timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    print(f"branchgym serve: {env_id} on ws://{host}:{port}/ws (OpenEnv; at most {max_sessions} "
          "sessions; Ctrl-C or SIGTERM stops it and closes every env)", flush=True)
    # uvicorn catches SIGINT/SIGTERM, shuts down, restores these handlers and re-raises the
    # signal: ours turns it into a normal return, so the sweep below runs (a default SIGTERM
    # would kill the process before it, leaving the pools' containers to the next reaper).
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run()
    except _Stopped:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for env in live_environments():
            _close_quietly(env)
        from branchgym.sandbox import factory

        for pool in list(factory._DEFAULT_POOLS.values()):
            pool.close()
