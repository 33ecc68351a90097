"""``ToolEnv``: the Gymnasium environment for tool-using LLM agents (README: Environments)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from branchgym.envs.protocols.base import Protocol
from branchgym.envs.protocols.registry import get_protocol
from branchgym.envs.sanitize import clean_text
from branchgym.envs.snapshot import copy_rng, restore, snapshot
from branchgym.envs.spaces import UnicodeText
from branchgym.envs.tasks import resolve_source
from branchgym.envs.tools.base import Tool, ToolOutput
from branchgym.envs.tools.registry import tool_spec
from branchgym.envs.toolset import build_tools
from branchgym.errors import CloneNotSupported, ConfigError, EnvError, ResetNeeded

__all__ = ["ToolEnv", "REWARD_NAMES"]

#: Built-in reward names; any name registered in ``branchgym.envs.scoring.REWARDS`` works.
REWARD_NAMES = ("f1", "em", "math_equal", "arpo_train", "llm_judge")
_OPTION_KEYS = ("task_id", "index")


class ToolEnv(gym.Env[str, str]):
    r"""A question-answering episode in which an LLM agent calls tools by writing text.

    The agent sees a prompt (instructions describing the enabled tools and the answer format,
    then the question), writes an action (its text for one turn), and gets back the output of the
    first complete tool call in that action, already wrapped in the protocol's result tags, so a
    token-in/token-out agent appends it verbatim (with loss mask 0). An answer ends the episode
    and is scored against the task's gold answers.

    ## Spaces

    ``observation_space`` and ``action_space`` are :class:`~branchgym.envs.spaces.UnicodeText`:
    any ``str`` up to ``max_length`` characters (spaces, newlines, emoji and markup included).

    ## Episode

    ``reset(seed=None, options=None) -> (obs, info)``
        * ``options={"task_id": id}`` or ``{"index": i}`` picks the task; otherwise it is drawn
          from the split with ``self.np_random`` (so ``seed`` fixes the task).
        * ``obs`` (str): the system prompt, a blank line, then the question.
        * ``info["task"]`` (dict): :meth:`Task.to_dict` (id, question, answers, gold_path, ...).
        * ``info["messages"]`` (list[dict]): the OpenAI-style chat so far,
          ``[{"role": "system", ...}, {"role": "user", ...}]``.
        * ``info["tools"]`` (list[dict]): the enabled tools' function schemas.
        * ``info["protocol"]`` (str): the protocol's name, so scripted agents can speak it.

    ``step(action) -> (obs, reward, terminated, truncated, info)``
        * ``obs`` (str): a tool call's output wrapped by the protocol (e.g.
          ``"\n<result>\n...\n</result>\n"``); for an invalid action, a message saying what was
          wrong and how to call correctly; ``""`` after an answer; a final message on truncation.
          Tool output is cleaned first (:func:`branchgym.envs.sanitize.clean_text`: no NULs,
          lone surrogates, control characters or terminal escape sequences).
        * ``reward`` (float): 0.0 until the episode terminates with an answer; then the task's
          score under ``reward`` (``f1``, ``em``, ``math_equal``, ``arpo_train``,
          ``llm_judge``), computed on the episode's whole response (every action and
          observation since reset, as ARPO scores it). Truncation gives 0.0.
        * ``terminated`` (bool): the action contained an answer.
        * ``truncated`` (bool): a limit ended the episode: ``max_turns`` actions without an
          answer, or the context budget: ``max_context_chars`` characters, and
          ``max_context_tokens`` tokens when a ``count_tokens`` function is given (prompt +
          actions + observations).
        * ``info`` keys, every step: ``turn`` (int, 1-based), ``tool`` (name of the tool run,
          or ``None``), ``invalid_action`` (bool), ``invalid_reason`` (str, when invalid),
          ``limit_reached`` (tool name, when a per-tool limit refused the call),
          ``tool_calls`` (dict name -> calls executed), ``messages`` (the chat so far).
          At the end of the episode also: ``task``, ``answer`` (the extracted prediction),
          ``metrics`` (dict: em, acc, f1, math_equal, and judge when a judge is set) with each
          metric also copied to the top level, ``reward_name``, ``truncation_reason``
          (``"max_turns"`` / ``"context_budget"``, when truncated), ``refused_calls``,
          ``invalid_actions``.

    In ``info["messages"]`` an action is an ``assistant`` message, a tool result a ``tool``
    message (``name`` = the tool, ``content`` = the unwrapped output), and env feedback (invalid
    action, limits) a ``user`` message.

    Limits: at most ``max_turns`` actions; at most ``max_calls[tool]`` executed calls per tool
    (default: each tool's ``default_max_calls``; ARPO's 10 search, 5 python); a call over the
    limit is not run and the agent is told so in ARPO's words ("The maximum search limit is
    exceeded. You are not allowed to search."; the verb is the tool's ``limit_verb``).

    ## Cloning and snapshots

    ``clone() -> ToolEnv`` returns an independent env whose future equals this one's for the
    same actions: the conversation, counters, ``np_random`` state and every tool's per-episode
    state are copied (the search tool's repeated-query set; the python tool's sandbox session is
    **forked**: interpreter state and workspace files). Immutable things (task list, world,
    search index, protocol) are shared, which keeps a clone cheap. ``branchgym.envs.clone(env)``
    clones a whole wrapper stack as ``gym.make`` returns it.

    ``get_state() -> dict`` is a JSON-serialisable snapshot; ``set_state(state)`` restores it
    into an env built with the same arguments. The python tool restores by replaying the
    episode's code in a fresh session (exact for deterministic code); see
    :mod:`branchgym.envs.tools.python`.

    Args:
        source: a ``TASK_SOURCES`` name (``"offline-websearch"``, ...), a ``TaskSource``, or a
            sequence of ``Task`` objects.
        tools: ``TOOLS`` names (``"search"``, ``"browse"``, ``"python"`` or a registered tool
            of one's own, docs/tools.md) or ``Tool`` instances.
        protocol: ``"arpo"`` (default), ``"search-r1"``, ``"hermes"`` or a ``Protocol``.
        split: which split of the source to draw tasks from.
        max_turns: actions per episode before truncation.
        max_calls: per-tool call limits merged over the tools' ``default_max_calls`` (``None`` =
            unlimited).
        max_context_chars: character budget of the whole episode (prompt included).
        max_context_tokens: token budget of the whole episode, counted with ``count_tokens``.
        count_tokens: ``text -> number of tokens`` (e.g. ``lambda t: len(tok.encode(t))``);
            required with ``max_context_tokens``.
        reward: the reward name (see above).
        judge: ``branchgym.envs.scoring.LLMJudge`` or any ``(question, pred, gold) -> bool``, for
            ``reward="llm_judge"`` and the ``judge`` metric.
        search_backend: a ``SEARCH_BACKENDS`` name or a ``SearchBackend`` object.
        fetcher: a ``FETCHERS`` name or a ``PageFetcher`` object, for browse.
        sandbox: the python tool's backend: ``"auto"``, ``"docker"`` or ``"local"``.
        source_kwargs: keyword arguments for the task source factory (``world_seed``, ...).
        tool_kwargs: per-tool keyword arguments, e.g. ``{"python": {"timeout_s": 5}}``.
        render_mode: ``None``, ``"ansi"`` (``render()`` returns the transcript) or ``"human"``.

    ## Version History

    * v0: initial version (arpo / search-r1 / hermes protocols, ARPO limits and rewards).
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi", "human"], "clonable": True}

    def __init__(
        self,
        source: str | Any = "offline-websearch",
        *,
        tools: Sequence[str | Tool] = ("search",),
        protocol: str | Protocol = "arpo",
        split: str = "test",
        max_turns: int = 16,
        max_calls: Mapping[str, int | None] | None = None,
        max_context_chars: int = 200_000,
        max_context_tokens: int | None = None,
        count_tokens: Callable[[str], int] | None = None,
        reward: str = "f1",
        judge: Any = None,
        search_backend: str | Any = "bm25",
        fetcher: str | Any = "world",
        sandbox: str = "auto",
        source_kwargs: Mapping[str, Any] | None = None,
        tool_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
        render_mode: str | None = None,
    ) -> None:
        if not isinstance(max_turns, int) or max_turns < 1:
            raise ConfigError(f"max_turns={max_turns!r} must be an int >= 1.")
        if not isinstance(max_context_chars, int) or max_context_chars < 1000:
            raise ConfigError(f"max_context_chars={max_context_chars!r} must be an int >= 1000.")
        bad_budget = not isinstance(max_context_tokens, int) or max_context_tokens < 1
        if max_context_tokens is not None and (count_tokens is None or bad_budget):
            raise ConfigError(
                f"max_context_tokens={max_context_tokens!r} needs an int >= 1 and "
                "count_tokens=<text -> int>, e.g. count_tokens=lambda t: len(tokenizer.encode(t))."
            )
        from branchgym.envs.scoring import REWARDS

        REWARDS.get(reward)  # unknown names raise UnknownName listing the registered rewards
        if reward == "llm_judge" and judge is None:
            raise ConfigError(
                "reward='llm_judge' needs judge=<(question, pred, gold) -> bool>, e.g. "
                "branchgym.envs.scoring.LLMJudge(...); or pick reward='f1'."
            )
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ConfigError(
                f"render_mode={render_mode!r}; use None or one of {self.metadata['render_modes']}."
            )
        self.render_mode = render_mode
        self.protocol: Protocol = get_protocol(protocol)
        self.source = resolve_source(source, split=split, **dict(source_kwargs or {}))
        self.split = split
        self._tasks = self.source.tasks(split)
        if not self._tasks:
            raise ConfigError(f"split {split!r} of source {self.source.name!r} has no tasks.")
        self._task_index: dict[str, int] | None = None
        self.tools: dict[str, Tool] = build_tools(
            tools,
            source=self.source,
            protocol=getattr(self.protocol, "name", "arpo"),
            search_backend=search_backend,
            fetcher=fetcher,
            sandbox=sandbox,
            tool_kwargs=tool_kwargs or {},
        )
        unknown = set(max_calls or {}) - set(self.tools)
        if unknown:
            raise ConfigError(
                f"max_calls names tools that are not enabled: {sorted(unknown)}; enabled: "
                f"{sorted(self.tools)}."
            )
        self.protocol = self.protocol.for_tools(self.tools)  # stop strings of the enabled tools
        defaults = {n: tool_spec(n, t, "default_max_calls") for n, t in self.tools.items()}
        self.max_calls = defaults | dict(max_calls or {})
        self.max_turns = max_turns
        self.max_context_chars = max_context_chars
        self.max_context_tokens = max_context_tokens
        self.count_tokens = count_tokens
        self.reward_name = reward
        self.judge = judge
        self.system_prompt = self.protocol.system_prompt(self.tools)
        self._tool_schemas = [t.schema() for t in self.tools.values()]
        cap = max(1_000_000, 2 * max_context_chars)
        self.observation_space = UnicodeText(cap)
        self.action_space = UnicodeText(cap)
        self._task = None
        self._clear_episode()

    # ------------------------------------------------------------------ episode state
    def _clear_episode(self) -> None:
        self._messages: list[dict[str, Any]] = []
        self._response: list[str] = []
        self._turn = 0
        self._calls = dict.fromkeys(self.tools, 0)
        self._refused = dict.fromkeys(self.tools, 0)
        self._invalid = 0
        self._chars = 0
        self._tokens = 0
        self._done = True

    @property
    def stop_strings(self) -> tuple[str, ...]:
        """Where a policy should stop generating: the closing tags of the enabled tools (and the
        protocol's own) and the answer's, from the protocol bound to the enabled tools
        (:meth:`Protocol.for_tools`), so one's own tool (docs/tools.md) stops at its tag too."""
        return tuple(self.protocol.stop_strings)

    @property
    def task(self) -> Any:
        """The current ``Task`` (``None`` before the first reset)."""
        return self._task

    @property
    def tasks(self) -> list[Any]:
        """The split's tasks, in the source's order (shared, do not mutate)."""
        return self._tasks

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The chat so far (a copy)."""
        return list(self._messages)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        index = self._pick(options or {})
        self._task = self._tasks[index]
        for tool in self.tools.values():
            tool.reset()
        self._clear_episode()
        self._done = False
        question = self._task.question
        self._messages = [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": question},
        ]
        obs = f"{self.system_prompt}\n\n{question}"
        self._chars = len(obs)
        self._tokens = self._count(obs)
        info = {
            "task": self._task.to_dict(),
            "messages": list(self._messages),
            "tools": [dict(s) for s in self._tool_schemas],
            "protocol": getattr(self.protocol, "name", ""),
        }
        return obs, info

    def _pick(self, options: Mapping[str, Any]) -> int:
        if not isinstance(options, Mapping) or set(options) - set(_OPTION_KEYS):
            raise ConfigError(
                f"reset(options={options!r}): supported keys are {list(_OPTION_KEYS)}, e.g. "
                "options={'task_id': 'websearch-test-00001'} or options={'index': 0}."
            )
        if "task_id" in options:
            if self._task_index is None:
                self._task_index = {t.id: i for i, t in enumerate(self._tasks)}
            tid = options["task_id"]
            if tid not in self._task_index:
                some = [t.id for t in self._tasks[:3]]
                raise ConfigError(
                    f"task_id {tid!r} is not in split {self.split!r} ({len(self._tasks)} tasks, "
                    f"e.g. {some}); check the split or use options={{'index': i}}."
                )
            return self._task_index[tid]
        if "index" in options:
            i = options["index"]
            if not isinstance(i, (int, np.integer)) or not 0 <= i < len(self._tasks):
                raise ConfigError(
                    f"index {i!r} is out of range: split {self.split!r} has "
                    f"{len(self._tasks)} tasks (0..{len(self._tasks) - 1})."
                )
            return int(i)
        return int(self.np_random.integers(len(self._tasks)))

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._task is None or self._done:
            raise ResetNeeded(
                "step() was called before reset() or after the episode ended; call reset() first."
            )
        if not isinstance(action, str):
            raise TypeError(
                f"ToolEnv actions are str (the agent's text), got {type(action).__name__}: "
                f"{action!r:.80}. Decode token ids to text first."
            )
        self._turn += 1
        self._chars += len(action)
        self._tokens += self._count(action)
        self._messages.append({"role": "assistant", "content": action})
        self._response.append(action)
        info: dict[str, Any] = {"turn": self._turn, "tool": None, "invalid_action": False}
        if self._over_budget():
            return self._truncate("", "context_budget", info)

        parsed = self.protocol.parse(action, self.tools)
        if parsed.kind == "answer":
            return self._finish(info)
        if parsed.kind == "invalid":
            self._invalid += 1
            info.update(invalid_action=True, invalid_reason=parsed.reason)
            obs = self.protocol.format_invalid(parsed.reason)
            self._messages.append({"role": "user", "content": obs.strip()})
        else:
            obs = self._run_tool(parsed.tool, parsed.argument, info)
        self._response.append(obs)
        self._chars += len(obs)
        self._tokens += self._count(obs)
        if self._over_budget():
            return self._truncate(obs, "context_budget", info)
        if self._turn >= self.max_turns:
            return self._truncate(obs, "max_turns", info)
        info["tool_calls"] = dict(self._calls)
        info["messages"] = list(self._messages)
        return obs, 0.0, False, False, info

    def _count(self, text: str) -> int:
        return 0 if self.max_context_tokens is None else int(self.count_tokens(text))

    def _over_budget(self) -> bool:
        if self._chars > self.max_context_chars:
            return True
        return self.max_context_tokens is not None and self._tokens > self.max_context_tokens

    def _run_tool(self, name: str, argument: str, info: dict[str, Any]) -> str:
        info["tool"] = name
        limit = self.max_calls.get(name)
        if limit is not None and self._calls[name] >= limit:
            self._refused[name] += 1
            info["limit_reached"] = name
            verb = tool_spec(name, self.tools[name], "limit_verb") or f"call {name}"
            text = f"The maximum {name} limit is exceeded. You are not allowed to {verb}."
            out = ToolOutput(text, ok=False)
        else:
            out = self.tools[name].call(argument)
            # ARPO does not count a repeated query against the search limit
            self._calls[name] += not out.metadata.get("duplicate", False)
        text = clean_text(out.text)  # no NUL, lone surrogate or escape sequence reaches the model
        self._messages.append({"role": "tool", "name": name, "content": text})
        return self.protocol.format_result(text)

    def _truncate(
        self, obs: str, why: str, info: dict[str, Any]
    ) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if why == "max_turns":
            msg = (
                f"The episode is over: the limit of {self.max_turns} turns was reached "
                "without a final answer."
            )
        else:
            msg = (
                f"The episode is over: the context budget ({self.max_context_chars} characters"
                + (f", {self.max_context_tokens} tokens" if self.max_context_tokens else "")
                + ") was used up without a final answer."
            )
        final = obs + self.protocol.format_feedback(msg)
        self._messages.append({"role": "user", "content": msg})
        info["truncation_reason"] = why
        _, _, _, _, info = self._end(info, scored=False)
        return final, 0.0, False, True, info

    def _finish(self, info: dict[str, Any]) -> tuple[str, float, bool, bool, dict[str, Any]]:
        return self._end(info, scored=True)

    def _end(
        self, info: dict[str, Any], *, scored: bool
    ) -> tuple[str, float, bool, bool, dict[str, Any]]:
        from branchgym.envs.scoring import REWARDS, extract_answer, score

        self._done = True
        text = "".join(self._response)
        # the judge is an LLM call: only for answered episodes, and only once
        ctx = {"judge": self.judge} if self.judge is not None and scored else {}
        metrics = dict(score(text, self._task, **ctx))
        if not scored:
            reward = 0.0
        elif self.reward_name == "llm_judge":
            reward = float(metrics["judge"])
        else:
            reward = float(REWARDS.get(self.reward_name)(text, self._task, **ctx))
        info.update(
            task=self._task.to_dict(),
            answer=extract_answer(text),
            metrics=metrics,
            reward_name=self.reward_name,
            tool_calls=dict(self._calls),
            refused_calls=dict(self._refused),
            invalid_actions=self._invalid,
            messages=list(self._messages),
        )
        for key, value in metrics.items():
            info.setdefault(key, value)
        return "", reward, True, False, info

    # ------------------------------------------------------------------ clone / state
    def clone(self) -> ToolEnv:
        """An independent env whose future equals this one's for the same actions.

        Copies the conversation, counters and ``np_random`` state; forks every tool (the python
        tool forks its sandbox session). Shares the immutable parts (tasks, protocol, world,
        search index). Raises ``CloneNotSupported`` if a tool cannot fork.
        """
        if not self.metadata.get("clonable", True):
            raise CloneNotSupported(
                f"{type(self).__name__} sets metadata['clonable']=False; it cannot be cloned."
            )
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin.tools = {name: tool.fork() for name, tool in self.tools.items()}
        twin._messages = list(self._messages)
        twin._response = list(self._response)
        twin._calls = dict(self._calls)
        twin._refused = dict(self._refused)
        if self._np_random is not None:
            twin._np_random = copy_rng(self._np_random)
        for attr in ("_action_space", "_observation_space"):
            if attr in self.__dict__:
                twin.__dict__[attr] = copy.copy(self.__dict__[attr])
        for space in (twin.action_space, twin.observation_space):
            if space._np_random is not None:
                space._np_random = copy_rng(space._np_random)
        return twin

    def get_state(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot of the episode (see the class docstring)."""
        return snapshot(self)

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`get_state` snapshot into this env (built with the same arguments).

        The whole snapshot is checked first (keys, types, ranges, sizes, every tool's state),
        then applied all or nothing. Raises :class:`~branchgym.errors.InvalidSnapshot` (a
        ``ValueError``) naming the bad field; the env is then unchanged.
        """
        restore(self, state)

    # ------------------------------------------------------------------ misc
    def render(self) -> str | None:
        """``"ansi"``: the transcript so far; ``"human"``: print it.

        The transcript is terminal-safe: escape sequences, control characters and bidi
        overrides in actions and observations are removed (:func:`branchgym.envs.sanitize.
        clean_text`), so a page or a program cannot clear the screen or retitle the window.
        """
        if self.render_mode is None:
            return None
        text = "\n".join(f"[{m['role']}] {clean_text(m['content'], terminal=True)}"
                         for m in self._messages)
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def close(self) -> None:
        """Release every tool's resources (sandbox sessions). Idempotent; the env can be reset
        again afterwards."""
        errors = []
        for tool in self.tools.values() if hasattr(self, "tools") else ():
            try:
                tool.close()
            except Exception as exc:  # close the others before reporting
                errors.append(exc)
        if errors:
            raise EnvError(f"closing tools failed: {errors!r}") from errors[0]

    def __repr__(self) -> str:
        return (
            f"ToolEnv(source={self.source.name!r}, split={self.split!r}, "
            f"tools={list(self.tools)}, protocol={self.protocol.name!r})"
        )

