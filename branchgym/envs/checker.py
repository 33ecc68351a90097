"""``check_env(env)``: Gymnasium's checker plus branchgym's clone and close checks.

Gymnasium's :func:`gymnasium.utils.env_checker.check_env` checks spaces, seeding, reset/step
return types, determinism and close. Its numeric assumptions (Box bounds, dtypes) do not apply to
text spaces and are skipped by Gymnasium itself for ``Text``; its render check would build one
new env per render mode, so ours renders ``"ansi"`` on the env at hand instead.

On top of that (the ToolEnv contract):

* **info contract**: ``reset`` returns ``task``, ``messages`` and ``tools``; ``step`` returns
  ``turn``, ``invalid_action`` and ``tool_calls``; an invalid action gives a non-empty
  observation and ``invalid_action=True``.
* **clone equivalence**: mid-episode, after tool calls, the clone and the original return the
  same observations, rewards and flags for the same actions.
* **clone independence**: stepping the original leaves the clone's snapshot unchanged, and a
  clone taken earlier then gives the original's observations; for the python tool, a variable
  the original overwrites after the clone keeps its value in the clone.

The tool calls come from each enabled tool's :class:`~branchgym.envs.tools.base.Probe`
(``Tool.probe``; docs/tools.md), so an env with a tool of one's own is checked the same way.
* **snapshots**: ``get_state()`` is JSON-serialisable and ``set_state`` reproduces the future.
* **close twice** on a clone.
* **turn limit**: the episode is truncated at ``max_turns`` actions, not before or after. The
  checks above play up to ~10 actions in one episode, so they run with the limit raised to
  ``CHECK_TURNS`` (an env with ``max_turns=4``, like the quickstart's, is checked the same way);
  the limit is restored afterwards and checked on its own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
from gymnasium.utils.env_checker import check_env as gym_check_env

from branchgym.envs.clone import clone as clone_stack
from branchgym.envs.tools.registry import tool_spec

__all__ = ["check_env", "probe_actions", "CHECK_TURNS"]

#: the turn limit the clone and snapshot checks play under (see the module docstring).
CHECK_TURNS = 64


def _probes(base: Any) -> list[tuple[str, Any, str]]:
    """(name, probe, main_arg) for every enabled tool that declares a probe."""
    out = []
    for name, tool in base.tools.items():
        probe = tool_spec(name, tool, "probe")
        if probe is not None:
            out.append((name, probe, getattr(tool, "main_arg", "input")))
    return out


def probe_actions(env: gym.Env[Any, Any], task: dict[str, Any]) -> list[str]:
    """Tool-calling actions for the checks: the task's first gold steps, then each enabled
    tool's ``probe.first``.

    Browse declares no probe: it is only probed through a gold path (a generic URL could reach
    the network).
    """
    base = env.unwrapped
    protocol, tools = base.protocol, base.tools
    actions: list[str] = []
    for step in task.get("gold_path", [])[:2]:
        if step["tool"] in tools:
            main = getattr(tools[step["tool"]], "main_arg", "input")
            actions.append(protocol.format_call(step["tool"], step["argument"], main))
    for name, probe, main in _probes(base):
        actions.append(protocol.format_call(name, probe.first, main))
    return actions


def _step(env: gym.Env[Any, Any], action: str) -> tuple[Any, ...]:
    obs, reward, terminated, truncated, _info = env.step(action)
    return obs, float(reward), bool(terminated), bool(truncated)


def check_env(
    env: gym.Env[Any, Any],
    *,
    seed: int = 0,
    actions: Sequence[str] | None = None,
    skip_gymnasium: bool = False,
) -> None:
    """Check ``env`` (a ``ToolEnv`` or a ``gym.make`` stack around one). Raises ``AssertionError``.

    Args:
        env: the env to check; it is reset and stepped, and left usable (reset it afterwards).
        seed: seed for the resets.
        actions: tool-calling actions to run before cloning (default: :func:`probe_actions`).
        skip_gymnasium: skip Gymnasium's own checker (e.g. when checking many variants).
    """
    base = env.unwrapped
    if not skip_gymnasium:
        gym_check_env(base, skip_render_check=True)  # Gymnasium asks for the unwrapped env
    limit = getattr(base, "max_turns", None)
    if limit is None:
        _check_episode(env, base, seed, actions)
        return
    base.max_turns = max(limit, CHECK_TURNS)
    try:
        _check_episode(env, base, seed, actions)
    finally:
        base.max_turns = limit
    _check_turn_limit(env, limit, seed)


def _check_episode(env: gym.Env[Any, Any], base: Any, seed: int, actions: Sequence[str] | None) -> None:
    """The info contract, invalid actions, probes, clones and snapshots, in one episode."""
    obs, info = env.reset(seed=seed)
    assert (
        isinstance(obs, str) and obs in env.observation_space
    ), "reset obs must be a str in the space"
    for key in ("task", "messages", "tools"):
        assert key in info, f"reset info lacks {key!r} (ToolEnv.reset must return it)"
    assert [m["role"] for m in info["messages"][:2]] == ["system", "user"], info["messages"][:2]
    if "ansi" in base.metadata.get("render_modes", ()):
        saved, base.render_mode = base.render_mode, "ansi"
        try:
            assert isinstance(base.render(), str), "render() in 'ansi' mode must return a str"
        finally:
            base.render_mode = saved

    invalid = "plain text without any call"
    o, r, term, trunc, inf = env.step(invalid)
    assert inf.get("invalid_action") is True and o.strip(), "an invalid action must be reported"
    assert r == 0.0 and not term, "an invalid action must not end the episode"
    for key in ("turn", "tool_calls"):
        assert key in inf, f"step info lacks {key!r}"

    prefix = list(actions) if actions is not None else probe_actions(env, info["task"])
    for action in prefix:
        _, _, term, trunc, _ = env.step(action)
        assert not (term or trunc), f"probe action ended the episode early: {action!r:.80}"

    _check_clone(env, base, seed)
    _check_snapshot(env)


def _check_turn_limit(env: gym.Env[Any, Any], limit: int, seed: int) -> None:
    """``limit`` invalid actions: the last one, and only it, truncates (or a context budget
    truncates earlier, saying so)."""
    env.reset(seed=seed)
    for turn in range(1, limit + 1):
        _, _, term, trunc, info = env.step("plain text without any call")
        assert not term, "an invalid action must not end the episode"
        if trunc:
            reason = info.get("truncation_reason")
            assert turn == limit or reason == "context_budget", (
                f"truncated after {turn} of max_turns={limit} actions (reason {reason!r})")
            return
    raise AssertionError(f"max_turns={limit} actions were played and the episode was not truncated")


def _check_clone(env: gym.Env[Any, Any], base: Any, seed: int) -> None:
    protocol = base.protocol
    probes = _probes(base)
    twin = clone_stack(env)
    spare = clone_stack(env)  # kept aside to check independence at the end
    assert twin is not env and twin.unwrapped is not base, "clone must return a new env"
    spare_state = spare.unwrapped.get_state()
    after = [protocol.format_call(n, p.then, main) for n, p, main in probes if p.then is not None]
    after.append("<<not a call>>")

    # equivalence: the same actions give the same results on the original and its clone
    ref = [_step(env, a) for a in after]
    got = [_step(twin, a) for a in after]
    assert got == ref, f"clone diverged from the original: {got} != {ref}"

    # independence: the original's (and the clone's) steps left the spare clone untouched
    for n, p, main in probes:
        if p.disturb is not None:
            env.step(protocol.format_call(n, p.disturb, main))
    assert spare.unwrapped.get_state() == spare_state, "stepping the original changed a clone"
    seen = [_step(spare, a) for a in after]
    assert seen == ref, f"the original's state leaked into its clone: {seen} != {ref}"

    end_twin = _step(twin, protocol.format_answer("definitely not the answer"))
    assert end_twin[2] is True, "an answer must terminate the episode"
    for c in (twin, spare):
        c.close()
        c.close()  # close is idempotent


def _check_snapshot(env: gym.Env[Any, Any]) -> None:
    base = env.unwrapped
    state = json.loads(json.dumps(base.get_state()))
    twin = base.clone()
    fresh = base.clone()
    fresh.set_state(state)
    probe = "<<not a call>>"
    assert _step(twin, probe) == _step(fresh, probe), "set_state(get_state()) changed the future"
    twin.close()
    fresh.close()
