"""The python tool: run the agent's code in a sandbox session (README: Sandbox).

One :class:`~branchgym.sandbox.core.Session` per episode, opened lazily at the first call, so an
episode that never runs code never starts a sandbox. Variables, imports and workspace files
persist across the episode's calls. ``fork()`` forks the session (interpreter state and
workspace), which is what makes a mid-episode ``env.clone()`` exact.

Snapshots: ``get_state()`` returns the list of code cells run so far in this episode;
``set_state()`` *replays* them in a fresh session (outputs discarded). Replay reproduces the
interpreter state for deterministic code; code that reads the clock, randomness without a seed,
or the outside world may end in a different state. Use ``fork()``/``env.clone()`` for an exact
copy; use snapshots to persist or move an episode.
"""

from __future__ import annotations

from typing import Any, ClassVar

from branchgym.envs.tools.base import Probe, Tool, ToolContext, ToolOutput

__all__ = ["PythonTool"]

_BACKENDS = ("auto", "docker", "local")
_MAX_CELLS = 10_000  # code cells in one snapshot
_MAX_HISTORY_CHARS = 4_000_000


class PythonTool(Tool):
    """Run Python code in a persistent sandboxed interpreter.

    Args:
        sandbox: ``"auto"`` (Docker when an engine answers, else local), ``"docker"`` or
            ``"local"``; passed to :func:`branchgym.sandbox.open_sandbox`.
        timeout_s: wall-clock limit per call; a call that runs longer is stopped and reported.
        max_output_chars: output beyond this is cut, with a note saying how much was cut.
        **limits: extra keyword arguments for ``open_sandbox`` (memory, CPU, ...).
    """

    name: ClassVar[str] = "python"
    main_arg: ClassVar[str] = "code"
    usage: ClassVar[str] = (
        "Python code; it runs in a persistent interpreter (variables, imports and files persist "
        "between calls) and a trailing bare expression is printed"
    )
    default_max_calls: ClassVar[int | None] = 5  # ARPO's evaluation limit
    limit_verb: ClassVar[str] = "use python"
    probe: ClassVar[Probe | None] = Probe(
        "_bg_probe = 41\nprint('probe set')", then="print(_bg_probe + 1)", disturb="_bg_probe = 0"
    )

    @classmethod
    def build(cls, context: ToolContext, **kwargs: Any) -> PythonTool:
        """The sandbox backend is ``tool_kwargs["python"]["sandbox"]``, else the env's."""
        return cls(kwargs.pop("sandbox", context.sandbox), **kwargs)

    def __init__(
        self,
        sandbox: str = "auto",
        *,
        timeout_s: float = 10.0,
        max_output_chars: int = 4000,
        **limits: Any,
    ) -> None:
        if sandbox not in _BACKENDS:
            raise ValueError(
                f"PythonTool(sandbox={sandbox!r}) is not a sandbox backend; use one of {_BACKENDS}."
            )
        if not timeout_s > 0:
            raise ValueError(f"PythonTool(timeout_s={timeout_s!r}) must be > 0 seconds.")
        if max_output_chars < 100:
            raise ValueError(
                f"PythonTool(max_output_chars={max_output_chars!r}) is too small; use >= 100."
            )
        self.sandbox = sandbox
        self.timeout_s = float(timeout_s)
        self.max_output_chars = int(max_output_chars)
        self.limits = dict(limits)
        self.description = (
            "Run Python code in a persistent interpreter; variables, imports and files persist "
            "between calls. Print what you need; a trailing bare expression is printed."
        )
        self.parameters = {
            "type": "object",
            "properties": {"code": {"type": "string", "description": "Python source to run"}},
            "required": ["code"],
        }
        self._session: Any = None
        self._history: list[str] = []

    @property
    def session(self) -> Any:
        """The open session, or ``None`` before the episode's first call."""
        return self._session

    def _open(self) -> Any:
        if self._session is None:
            from branchgym.sandbox import open_sandbox  # heavy backends load only when used

            self._session = open_sandbox(backend=self.sandbox, **self.limits)
        return self._session

    def call(self, argument: str) -> ToolOutput:
        """Run ``argument`` as code. Errors in the code are output; a broken sandbox raises."""
        result = self._open().run(argument, timeout_s=self.timeout_s)
        self._history.append(argument)
        if result.timed_out:
            text = result.as_text()
            note = f"TimeoutError: the code ran longer than {self.timeout_s:g} s and was stopped."
            text = f"{text}\n{note}" if text else note
        else:
            text = result.as_text() or "(no output; print() what you want to see)"
        if len(text) > self.max_output_chars:
            cut = len(text) - self.max_output_chars
            text = f"{text[: self.max_output_chars]}\n... [{cut} more characters cut]"
        return ToolOutput(text, ok=result.ok, metadata={"timed_out": result.timed_out})

    def _spawn(self) -> PythonTool:
        twin = object.__new__(PythonTool)
        twin.__dict__.update(self.__dict__)
        twin._session = None
        twin._history = list(self._history)
        return twin

    def fork(self) -> PythonTool:
        """A tool whose session is a fork of this one's (equal interpreter state and files)."""
        twin = self._spawn()
        if self._session is not None:
            twin._session = self._session.fork()
        return twin

    def get_state(self) -> dict[str, Any]:
        """The code cells run so far in this episode (replayed by :meth:`set_state`)."""
        return {"history": list(self._history)}

    def check_state(self, state: Any) -> None:
        """``{"history": [code, ...]}``: at most 10,000 cells, 4,000,000 characters in all."""
        if not isinstance(state, dict) or set(state) != {"history"} or not isinstance(
                state["history"], list):
            raise ValueError(
                f"PythonTool.set_state expects {{'history': [code, ...]}} from get_state(), "
                f"got {type(state).__name__}."
            )
        history = state["history"]
        if len(history) > _MAX_CELLS or not all(isinstance(c, str) for c in history) or sum(
                map(len, history)) > _MAX_HISTORY_CHARS:
            raise ValueError(f"PythonTool state 'history' must be at most {_MAX_CELLS} str "
                             f"cells of {_MAX_HISTORY_CHARS} characters in all.")

    def set_state(self, state: Any) -> None:
        """Replay ``state["history"]`` in a fresh session (see the module docstring).

        The replay runs in a new session; only when every cell has run does it replace this
        tool's session, so a failing replay (a broken sandbox) leaves the tool as it was.
        """
        self.check_state(state)
        twin = self._spawn()
        try:
            for code in state["history"]:
                twin._open().run(code, timeout_s=self.timeout_s)
        except BaseException:
            twin.close()
            raise
        self.close()
        self._session, self._history = twin._session, list(state["history"])

    def reset(self) -> None:
        """Drop the episode's session; the next call opens a fresh one."""
        self.close()
        self._history = []

    def close(self) -> None:
        """Release the session. Idempotent."""
        session, self._session = self._session, None
        if session is not None:
            session.close()

    def __repr__(self) -> str:
        return f"PythonTool(sandbox={self.sandbox!r}, timeout_s={self.timeout_s:g})"
