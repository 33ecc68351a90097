"""GEM's own ``gem.make`` builds branchgym envs through the adapter; ``spawn(same_state=True)`` is a
mid-episode clone (the python sandbox forked)."""

from __future__ import annotations

import subprocess
import sys

import pytest

gem = pytest.importorskip("gem")

LOOKUP = "branchgym.algorithms.quickstart_task:make_lookup_env"


def _gold(task_id: str):
    from branchgym.algorithms.quickstart_task import lookup_tasks

    task = next(t for t in lookup_tasks("smoke") if t.id == task_id)
    return f"<search>{task.gold_path[0].argument}</search>", f"<answer>\\boxed{{{task.answers[0]}}}</answer>"


def test_ids_are_registered_without_importing_the_adapter():
    # a fresh interpreter: the import hook that the wheel installs registers the ids when gem loads
    code = ("import gem; from gem.envs.registration import ENV_REGISTRY; "
            "print('branchgym:WebSearch-Offline-v0' in ENV_REGISTRY, 'branchgym:env' in ENV_REGISTRY, "
            "'branchgym.integrations.gem' in __import__('sys').modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["True", "True", "True"], out.stderr[-2000:]


def test_gem_make_plays_an_episode():
    import branchgym.integrations.gem  # noqa: F401  (registered already by the hook; explicit here)
    from branchgym.integrations.gem import BranchgymGemEnv

    env = gem.make("branchgym:env", env=LOOKUP, split="smoke", task_id="lookup-smoke-0003")
    assert isinstance(env, gem.Env) and isinstance(env, BranchgymGemEnv)
    obs, info = env.reset(seed=0)
    assert "#" in obs and info["task"]["id"] == "lookup-smoke-0003"
    search, answer = _gold("lookup-smoke-0003")
    obs, reward, terminated, truncated, _ = env.step(search)
    assert "code=" in obs and (reward, terminated, truncated) == (0.0, False, False)
    obs, reward, terminated, truncated, info = env.step(answer)
    assert (reward, terminated, truncated) == (1.0, True, False) and info["answer"]
    assert isinstance(env.sample_random_action(), str)
    env.close()
    # a registered Gymnasium id works the same way, with GEM's vector env around it
    vec = gem.make_vec(["branchgym:WebSearch-Offline-v0"] * 2, split="smoke")
    obs, _ = vec.reset()
    assert len(obs) == 2 and all(isinstance(o, str) and o for o in obs)
    for e in vec.envs:
        e.close()


def test_bad_construction_is_a_clear_error():
    from branchgym.errors import ConfigError
    from branchgym.integrations.gem import BranchgymGemEnv

    with pytest.raises(ConfigError, match="branchgym:WebSearch-Offline-v0"):
        BranchgymGemEnv()
    with pytest.raises(ConfigError, match="unknown env id"):
        gem.make("branchgym:env", env="NoSuch-v0")
    env = gem.make("branchgym:env", env=LOOKUP, split="smoke")
    with pytest.raises(ConfigError, match="takes no settings"):
        env.spawn(same_state=True, split="train")
    env.close()


def test_spawn_fresh_and_same_state_on_search():
    env = gem.make("branchgym:env", env=LOOKUP, split="smoke", task_id="lookup-smoke-0002")
    env.reset()
    search, answer = _gold("lookup-smoke-0002")
    env.step("<search>unrelated words</search>")
    twin = env.spawn(same_state=True)
    assert twin is not env and twin.env is not env.env
    assert twin.get_state() == env.get_state()
    assert twin.step(search)[:4] == env.step(search)[:4]
    # independent: the original answers wrong, the twin right
    assert env.step("<answer>\\boxed{0}</answer>")[1] == 0.0
    assert twin.step(answer)[1] == 1.0
    fresh = env.spawn(task_id="lookup-smoke-0001")
    obs, info = fresh.reset()
    assert info["task"]["id"] == "lookup-smoke-0001"
    for e in (env, twin, fresh):
        e.close()


@pytest.mark.docker
@pytest.mark.slow
def test_spawn_same_state_forks_the_docker_python_sandbox():
    env = gem.make("branchgym:CodeExec-Offline-v0", split="smoke", sandbox="docker")
    try:
        env.reset(seed=0)
        env.step("<python>acc = [1, 2, 3]\nopen('notes.txt', 'w').write('v1')</python>")
        twin = env.spawn(same_state=True)
        # the original moves on: rewrites the variable and the workspace file
        env.step("<python>acc = None\nopen('notes.txt', 'w').write('v2')</python>")
        assert "6 v1" in twin.step("<python>print(sum(acc), open('notes.txt').read())</python>")[0]
        assert "None v2" in env.step("<python>print(acc, open('notes.txt').read())</python>")[0]
        # equal future: the twin and a spawn of it answer the same steps alike
        third = twin.spawn(same_state=True)
        steps = ["<python>acc.append(4)\nprint(acc)</python>", "<python>print(len(acc))</python>"]
        assert [twin.step(a)[:4] for a in steps] == [third.step(a)[:4] for a in steps]
        third.close()
        twin.close()
    finally:
        env.close()


def test_docs_example_runs():
    import runpy
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "integrations" / "gem_clone.py"
    out = runpy.run_path(str(example))["main"]()
    assert out["wrong"] == 0.0 and out["right"] == 1.0
