"""Every benchmark env id: registered as docs/benchmarks.md lists, built from our fixture through
``gym.make`` with its registered tools (search through a real Search-R1 server on loopback),
and passing ``branchgym.envs.check_env``."""

from __future__ import annotations

import gymnasium as gym
import pytest

from branchgym.envs.benchmarks.table import SPECS, env_kwargs
from branchgym.envs.checker import check_env
from branchgym.envs.web.loopback import LoopbackServer, Reply, Request

from .conftest import fixture_file

DESIGN_IDS = {
    "WebSearch-GAIA-v0", "WebSearch-HLE-v0", "WebSearch-WebWalkerQA-v0",
    "WebSearch-XBenchDeepSearch-v0", "WebSearch-FRAMES-v0", "WebSearch-BrowseComp-v0",
    "WebSearch-SimpleQA-v0", "WebSearch-HotpotQA-v0", "WebSearch-2Wiki-v0",
    "WebSearch-MuSiQue-v0", "WebSearch-Bamboogle-v0", "CodeExec-AIME24-v0",
    "CodeExec-AIME25-v0", "CodeExec-MATH500-v0", "CodeExec-GSM8K-v0",
}


def test_env_ids_are_exactly_the_design_list() -> None:
    assert {s.env_id for s in SPECS} == DESIGN_IDS
    assert DESIGN_IDS <= set(gym.registry)


def retrieve(req: Request) -> Reply:
    body = req.json()
    return Reply(200, {"result": [[
        {"document": {"id": f"d{j}", "contents": f'"Passage {j}"\nAbout {q}: fact number {j}.'},
         "score": 5.0 - j} for j in range(body["topk"])] for q in body["queries"]]})


@pytest.fixture(scope="module")
def retriever():
    with LoopbackServer({"/retrieve": retrieve}) as srv:
        yield srv


@pytest.mark.timeout(180)  # a stuck sandbox must fail the test, not stall the run
@pytest.mark.parametrize("spec", SPECS, ids=[s.env_id for s in SPECS])
def test_env_builds_from_fixture_and_passes_check_env(spec, retriever, monkeypatch) -> None:
    monkeypatch.setenv("BRANCHGYM_RETRIEVER_URL", retriever.url(""))
    env = gym.make(spec.env_id, source_kwargs={"data_files": str(fixture_file(spec.name))},
                   sandbox="local")
    try:
        base = env.unwrapped
        assert sorted(base.tools) == sorted(env_kwargs(spec)["tools"])
        assert len(base.source.tasks("test")) == 3
        check_env(env, skip_gymnasium=spec.name != "gaia")  # Gymnasium's own checks once
    finally:
        env.close()


def test_leak_flags_reach_info(retriever, monkeypatch) -> None:
    monkeypatch.setenv("BRANCHGYM_RETRIEVER_URL", retriever.url(""))
    env = gym.make("WebSearch-Bamboogle-v0", tools=["search"],
                   source_kwargs={"data_files": str(fixture_file("bamboogle"))})
    env.reset(options={"index": 0})  # gold answer "Henrik Solm"
    _, _, _, _, info = env.step("<search>Henrik Solm</search>")  # echoed in the passages
    assert info["leak_flags"] == ["Henrik Solm"]
    _, _, _, _, info = env.step("<search>bridge opening</search>")
    assert info["leak_flags"] == [] and info["leak_flags_episode"] == [
        {"turn": 0, "answers": ["Henrik Solm"]}]
    env.close()


def test_registering_the_benchmarks_imports_nothing_heavy() -> None:
    import subprocess
    import sys

    code = ("import sys, gymnasium, branchgym.envs.registries\n"
            "assert 'WebSearch-GAIA-v0' in gymnasium.registry\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('datasets', 'httpx', 'pyarrow', 'torch', 'docker', 'transformers')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_list_never_reaches_for_the_hub(monkeypatch, capsys) -> None:
    import branchgym.envs.benchmarks.hub as hub
    from branchgym.cli import main
    from branchgym.envs.benchmarks.table import not_loaded_reason

    def no_network(*a, **k):
        raise AssertionError("`branchgym list` tried to open a connection")

    monkeypatch.setattr(hub.socket, "create_connection", no_network)
    monkeypatch.setenv("BRANCHGYM_DATA_GSM8K", str(fixture_file("gsm8k")))
    assert not_loaded_reason("offline-websearch") is None
    assert not_loaded_reason("gsm8k") is None
    assert "BRANCHGYM_DATA_GAIA" in not_loaded_reason("gaia")
    assert main(["list"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert rows["CodeExec-GSM8K-v0"].endswith("test=3")
    assert "not downloaded (set BRANCHGYM_DATA_HOTPOTQA" in rows["WebSearch-HotpotQA-v0"]
