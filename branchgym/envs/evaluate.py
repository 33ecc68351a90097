"""The evaluation loop: run an agent on an env's tasks, score, aggregate, write transcripts.

Reused by ``branchgym eval`` and by the policies/benchmarks code with any
:class:`~branchgym.agents.core.Agent`. An LLM agent (a
:class:`~branchgym.agents.policy_agent.PolicyAgent`, what ``branchgym eval --policy`` builds) is
played by the rollout engine's round loop (:func:`branchgym.agents.loop.run_round`, the one the
trainer uses; docs/rollout.md) with evaluation's turn rule: every generation call is one turn
sent to the env, its per-call token limit included, and the env's own limits end the episode. A sample counts as *correct* for pass@k when the judge
said so (if the env has a judge), else by ``math_equal`` for number/math tasks and by exact match
(``em``) for string tasks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import gymnasium as gym

from branchgym.errors import ConfigError

__all__ = ["EpisodeResult", "EvalReport", "run_episode", "evaluate", "is_correct"]

_METRICS = ("em", "acc", "f1", "math_equal", "judge")


@dataclass(frozen=True)
class EpisodeResult:
    """One episode: its task, the agent's final answer, metrics and transcript."""

    task_id: str
    sample: int
    seed: int | None
    reward: float
    metrics: dict[str, float]
    answer: str
    correct: bool
    terminated: bool
    truncated: bool
    turns: int
    tool_calls: dict[str, int]
    invalid_actions: int
    messages: list[dict[str, Any]] = field(repr=False)

    def to_json(self) -> str:
        """One JSONL line (lone surrogates from the agent are escaped, not an error)."""
        return json.dumps(asdict(self), ensure_ascii=True)


def is_correct(metrics: dict[str, Any], answer_type: str) -> bool:
    """Binary correctness for pass@k (see the module docstring)."""
    if "judge" in metrics:
        return bool(metrics["judge"])
    key = "math_equal" if answer_type in ("number", "math") else "em"
    return bool(metrics.get(key, 0.0))


def run_episode(
    env: gym.Env[str, str],
    agent: Any,
    *,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
    sample: int = 0,
    max_steps: int = 1000,
) -> EpisodeResult:
    """Reset ``env``, let ``agent`` act until the episode ends, and return the result."""
    from branchgym.agents.policy_agent import PolicyAgent

    if isinstance(agent, PolicyAgent):
        return _engine_episode(env, agent, seed=seed, options=options, sample=sample, max_steps=max_steps)
    obs, info = env.reset(seed=seed, options=options)
    task = info["task"]
    agent.reset(obs, info)
    reward, terminated, truncated = 0.0, False, False
    for _ in range(max_steps):
        obs, reward, terminated, truncated, info = env.step(agent.act(obs))
        if terminated or truncated:
            break
    else:
        raise _endless(task, max_steps)
    return _result(task, sample, seed, reward, terminated, truncated, info)


def _endless(task: dict[str, Any], max_steps: int) -> ConfigError:
    return ConfigError(
        f"episode on task {task['id']!r} did not end within max_steps={max_steps}; "
        "the env has no turn limit — set max_turns."
    )


def _engine_episode(
    env: gym.Env[str, str], agent: Any, *, seed: int | None, options: dict[str, Any] | None, sample: int,
    max_steps: int,
) -> EpisodeResult:
    """One episode of a policy agent through the engine's round loop (``agent.trajectory`` is its
    token record); an env that raises fails the evaluation, as with any other agent."""
    from branchgym.agents.loop import LiveEpisode, run_round

    ep = LiveEpisode.start(env, agent.policy, seed=seed, options=options, extra_stop=agent.stop,
                           max_response_tokens=None, each_call_is_a_turn=True)
    agent.trajectory = t = ep.trajectory
    task = t.info["task"]
    for _ in range(max_steps):
        run_round([ep], agent.policy, agent.params, close_finished=False)
        if ep.done:
            break
    else:
        raise _endless(task, max_steps)
    if t.end_reason == "env_error":  # the env's own exception, type and traceback kept
        raise ep.env_exception
    last = t.steps[-1]
    return _result(task, sample, seed, last.reward, last.terminated, last.truncated, t.info)


def _result(
    task: dict[str, Any], sample: int, seed: int | None, reward: float, terminated: bool, truncated: bool,
    info: dict[str, Any],
) -> EpisodeResult:
    metrics = {k: float(v) for k, v in info.get("metrics", {}).items() if k in _METRICS}
    return EpisodeResult(
        task_id=task["id"],
        sample=sample,
        seed=seed,
        reward=float(reward),
        metrics=metrics,
        answer=str(info.get("answer", "")),
        correct=is_correct(metrics, task.get("answer_type", "string")),
        terminated=bool(terminated),
        truncated=bool(truncated),
        turns=int(info.get("turn", 0)),
        tool_calls=dict(info.get("tool_calls", {})),
        invalid_actions=int(info.get("invalid_actions", 0)),
        messages=list(info.get("messages", [])),
    )


@dataclass(frozen=True)
class EvalReport:
    """Aggregates over an evaluation: means of every metric, pass@1 and pass@k."""

    episodes: list[EpisodeResult] = field(repr=False)
    n_samples: int
    summary: dict[str, float]

    def table(self, title: str = "") -> str:
        """A plain-text metrics table (one row: metric, value)."""
        width = max(len(k) for k in self.summary) + 2
        lines = [title] if title else []
        lines += [f"{'metric':<{width}} value", f"{'-' * width} --------"]
        for key, value in self.summary.items():
            lines.append(
                f"{key:<{width}} {value:.4f}"
                if isinstance(value, float)
                else f"{key:<{width}} {value}"
            )
        return "\n".join(lines)


def _summarise(results: list[EpisodeResult], n_samples: int) -> dict[str, Any]:
    from branchgym.envs.scoring import pass_at_k

    n = len(results)
    summary: dict[str, Any] = {"episodes": n, "tasks": len({r.task_id for r in results})}
    for key in _METRICS:
        vals = [r.metrics[key] for r in results if key in r.metrics]
        if vals:
            summary[key] = sum(vals) / len(vals)
    summary["reward"] = sum(r.reward for r in results) / max(n, 1)
    summary["tool_calls"] = sum(sum(r.tool_calls.values()) for r in results) / max(n, 1)
    summary["turns"] = sum(r.turns for r in results) / max(n, 1)
    summary["truncated"] = sum(r.truncated for r in results) / max(n, 1)
    summary["invalid_actions"] = sum(r.invalid_actions for r in results) / max(n, 1)
    by_task: dict[str, list[bool]] = {}
    for r in results:
        by_task.setdefault(r.task_id, []).append(r.correct)
    ks = [1] + ([n_samples] if n_samples > 1 else [])
    for k in ks:
        vals = [pass_at_k(len(c), sum(c), k) for c in by_task.values() if len(c) >= k]
        summary[f"pass@{k}"] = sum(vals) / max(len(vals), 1)
    return summary


def evaluate(
    env: gym.Env[str, str],
    agent: Any | Callable[[], Any],
    *,
    episodes: int | None = None,
    n_samples: int = 1,
    seed: int = 0,
    out: str | Path | TextIO | None = None,
    progress: bool = False,
) -> EvalReport:
    """Run ``agent`` on the first ``episodes`` tasks of ``env``'s split, ``n_samples`` times each.

    Args:
        env: a ``ToolEnv`` (or a ``gym.make`` stack around one).
        agent: an ``Agent``, or a zero-argument factory called once per sample.
        episodes: number of tasks (default: the whole split), taken in the split's order.
        n_samples: samples per task (pass@k for k = n_samples is reported when > 1).
        seed: base seed; sample ``j`` of task ``i`` resets with ``seed + i * n_samples + j``.
        out: a path or text stream for JSONL transcripts (one line per episode).
        progress: show a tqdm progress bar on stderr.
    """
    tasks = env.unwrapped.tasks
    n_tasks = len(tasks) if episodes is None else episodes
    if not isinstance(n_tasks, int) or not 1 <= n_tasks <= len(tasks):
        raise ConfigError(
            f"episodes={episodes!r}: the split has {len(tasks)} tasks; ask for 1..{len(tasks)}."
        )
    if not isinstance(n_samples, int) or n_samples < 1:
        raise ConfigError(f"n_samples={n_samples!r} must be an int >= 1.")
    factory = isinstance(agent, type) or (callable(agent) and not hasattr(agent, "act"))
    make_agent = agent if factory else (lambda: agent)
    stream, close = _open(out)
    jobs: Iterable[tuple[int, int]] = [(i, j) for i in range(n_tasks) for j in range(n_samples)]
    if progress:
        from tqdm import tqdm

        jobs = tqdm(list(jobs), desc="eval", unit="ep")
    results = []
    try:
        for i, j in jobs:
            result = run_episode(
                env, make_agent(), seed=seed + i * n_samples + j, options={"index": i}, sample=j
            )
            results.append(result)
            if stream is not None:
                stream.write(result.to_json() + "\n")
    finally:
        if close:
            stream.close()
    return EvalReport(results, n_samples, _summarise(results, n_samples))


def _open(out: str | Path | TextIO | None) -> tuple[TextIO | None, bool]:
    if out is None:
        return None, False
    if isinstance(out, (str, Path)):
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("w", encoding="utf-8"), True
    return out, False
