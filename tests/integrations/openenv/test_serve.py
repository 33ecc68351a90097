"""``branchgym serve`` driven by OpenEnv's own client over loopback, with the Docker sandbox.

- ≥ 8 concurrent sessions; a python variable defined in one step is read in the next.
- Killing a client process (its socket drops) closes its env and its sandbox session.
- Malformed frames get error replies; the socket and the server stay usable.
- The task API lists the env's splits; an unknown task is a clear error.
- Clone over the wire: the copy's sandbox holds the parent's state, then both go their own way.
- ``--max-sessions`` counts parked clones; a clone token works once and expires.
- SIGTERM closes every session and leaves no sandbox container behind.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

pytestmark = [pytest.mark.openenv, pytest.mark.docker]


def _py(code: str) -> dict:
    return {"text": f"<python>{code}</python>"}


def _result(text: str) -> str:
    return text.replace("<result>", "").replace("</result>", "").strip()


def test_eight_concurrent_sessions_keep_python_state_across_steps(code_server) -> None:
    from openenv.core.generic_client import GenericEnvClient

    n = 8
    base = code_server.stats()
    barrier = threading.Barrier(n, timeout=120)
    seen: dict[int, tuple[str, dict]] = {}
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            with GenericEnvClient(base_url=code_server.url, message_timeout_s=120).sync() as c:
                first = c.reset(index=i % 4)
                assert first.observation["info"]["task"]["id"]
                c.step(_py(f"secret = {i} * 1000 + 7"))
                barrier.wait()  # all n sessions are open, each with its sandbox, right now
                if i == 0:
                    seen[-1] = ("", code_server.stats())
                barrier.wait()
                out = c.step(_py("print(secret + 1)"))
                seen[i] = (_result(out.observation["text"]), out.observation["info"])
        except BaseException as exc:  # reported below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    for i in range(n):
        assert seen[i][0] == str(i * 1000 + 8)
        assert seen[i][1]["tool_calls"]["python"] == 2
    during = seen[-1][1]
    assert during["sessions"] == base["sessions"] + n
    assert during["sandbox_busy_hosts"] == base["sandbox_busy_hosts"] + n
    after = code_server.wait_stats(lambda s: s["sessions"] == base["sessions"]
                                   and s["sandbox_busy_hosts"] == base["sandbox_busy_hosts"])
    assert after["sessions"] == base["sessions"] and after["open_envs"] == base["open_envs"]
    assert after["sandbox_busy_hosts"] == base["sandbox_busy_hosts"]


_CLIENT = """
import sys, time
from openenv.core.generic_client import GenericEnvClient
c = GenericEnvClient(base_url=sys.argv[1], message_timeout_s=120).sync()
c.connect()
c.reset(index=0)
r = c.step({"text": "<python>x = 1\\nprint('opened')</python>"})
print(r.observation["text"].strip().splitlines()[1], flush=True)
time.sleep(600)
"""


def test_killing_a_client_closes_its_env_and_sandbox_session(code_server) -> None:
    base = code_server.stats()
    proc = subprocess.Popen([sys.executable, "-c", _CLIENT, code_server.url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "opened", proc.stderr.read() if proc.poll() else ""
        held = code_server.stats()
        assert held["sessions"] == base["sessions"] + 1
        assert held["open_envs"] == base["open_envs"] + 1
        assert held["sandbox_busy_hosts"] == base["sandbox_busy_hosts"] + 1
    finally:
        proc.kill()  # SIGKILL: no close frame, the socket just drops
        proc.wait()
    after = code_server.wait_stats(lambda s: s["sandbox_busy_hosts"] == base["sandbox_busy_hosts"]
                                   and s["sessions"] == base["sessions"])
    assert after["sessions"] == base["sessions"]
    assert after["open_envs"] == base["open_envs"]
    assert after["sandbox_busy_hosts"] == base["sandbox_busy_hosts"]


def test_malformed_frames_get_error_replies_and_the_server_stays_up(code_server) -> None:
    from websockets.sync.client import connect

    def ask(ws, frame) -> dict:
        ws.send(frame)
        return json.loads(ws.recv(timeout=60))

    with connect(code_server.ws_url) as ws:
        bad = [
            "{not json",
            json.dumps({"type": "teleport"}),
            json.dumps({"type": "step", "data": {"txt": "x"}}),
            json.dumps({"type": "step", "data": {"text": 42}}),
            json.dumps({"type": "step", "data": {"text": "<answer>1</answer>"}}),  # before reset
            json.dumps({"type": "reset", "data": {"task": "q1"}}),
            json.dumps({"type": "reset", "data": {"index": 10_000}}),
            json.dumps({"type": "clone"}),  # before reset
            json.dumps({"type": "clone", "data": {"deep": True}}),
            json.dumps([1, 2, 3]),
            b"\xff\xfe binary garbage",
        ]
        replies = [ask(ws, frame) for frame in bad]
        for frame, reply in zip(bad, replies):
            assert reply["type"] == "error" and reply["data"]["message"], (frame, reply)
        assert "unknown field(s) ['task']" in replies[5]["data"]["message"]
        assert "out of range" in replies[6]["data"]["message"]
        assert "reset the session first" in replies[7]["data"]["message"]
        # the same socket still works
        ok = ask(ws, json.dumps({"type": "reset", "data": {"index": 0}}))
        assert ok["type"] == "observation" and ok["data"]["observation"]["info"]["task"]["id"]
        stepped = ask(ws, json.dumps({"type": "step", "data": _py("print(6 * 7)")}))
        assert _result(stepped["data"]["observation"]["text"]) == "42"
    assert code_server.get("/health")["status"] == "healthy"


def test_task_api_and_unknown_tasks(code_server) -> None:
    import urllib.error
    import urllib.request

    from openenv.core.generic_client import GenericEnvClient

    splits = code_server.get("/CodeExec-Offline-v0/splits")
    assert {"name": "smoke", "type": "validation"} in splits

    def post(path: str, body: dict) -> dict:
        req = urllib.request.Request(code_server.url + path, json.dumps(body).encode(),
                                     {"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    n = post("/CodeExec-Offline-v0/num_tasks", {"split": "smoke"})["num_tasks"]
    tasks = post("/CodeExec-Offline-v0/tasks", {"split": "smoke"})["tasks"]
    assert len(tasks) == n > 0 and set(tasks[0]) == {"id", "index", "question"}
    with pytest.raises(urllib.error.HTTPError) as err:
        post("/CodeExec-Offline-v0/task", {"split": "nope", "index": 0})
    assert err.value.code == 404 and "smoke" in err.value.read().decode()
    with GenericEnvClient(base_url=code_server.url).sync() as c:
        got = c.reset(task_id=tasks[1]["id"])
        assert got.observation["info"]["task"]["id"] == tasks[1]["id"]
        with pytest.raises(RuntimeError, match="task_id 'no-such-task' is not in split 'smoke'"):
            c.reset(task_id="no-such-task")


def test_clone_over_the_wire_forks_the_sandbox_on_the_server(code_server) -> None:
    from branchgym.errors import ResetNeeded
    from branchgym.integrations.openenv import BranchEnvClient

    base = code_server.stats()
    parent = BranchEnvClient(base_url=code_server.url, message_timeout_s=120).sync()
    parent.connect()
    try:
        parent.reset(index=0)
        parent.step("<python>x = 5\nopen('f.txt', 'w').write('a')</python>")
        child = parent.clone()
        try:
            assert code_server.stats()["sessions"] == base["sessions"] + 2
            parent.step("<python>x += 1\nopen('f.txt', 'a').write('p')</python>")
            mine = child.step("<python>print(x, open('f.txt').read())</python>").observation
            theirs = parent.step("<python>print(x, open('f.txt').read())</python>").observation
            assert _result(mine.text) == "5 a" and _result(theirs.text) == "6 ap"
            assert mine.info["tool_calls"]["python"] == 2
            assert theirs.info["tool_calls"]["python"] == 3
            assert child.state().step_count == parent.state().step_count - 1
            grandchild = child.clone()  # a clone of a clone
            grandchild.step("<python>x = 100</python>")
            assert _result(child.step("<python>print(x)</python>").observation.text) == "5"
            grandchild.close()
        finally:
            child.close()
        done = parent.step("<answer>\\boxed{0}</answer>").observation
        assert done.done and done.terminated
        with pytest.raises(ResetNeeded, match="clone needs a live episode"):
            parent.clone()
    finally:
        parent.close()
    after = code_server.wait_stats(lambda s: s["sessions"] == base["sessions"]
                                   and s["sandbox_busy_hosts"] == base["sandbox_busy_hosts"])
    assert after["sessions"] == base["sessions"] and after["parked_clones"] == 0
    assert after["sandbox_busy_hosts"] == base["sandbox_busy_hosts"]


def test_max_sessions_and_one_time_clone_tokens() -> None:
    """--max-sessions counts parked clones; a token works once; an unadopted one expires
    (search env, no sandbox, --clone-ttl 1)."""
    from websockets.sync.client import connect

    from openenv_server import start_server

    server = start_server("WebSearch-Offline-v0", "split=smoke", max_sessions=2,
                          extra=("--clone-ttl", "1"))

    def ask(ws, frame: dict) -> dict:
        ws.send(json.dumps(frame))
        return json.loads(ws.recv(timeout=60))

    try:
        with connect(server.ws_url) as ws:
            ask(ws, {"type": "reset", "data": {"index": 0}})
            token = ask(ws, {"type": "clone"})["data"]["clone_id"]
            full = ask(ws, {"type": "clone"})  # 1 session + 1 parked clone = the cap
            assert full["type"] == "error" and full["data"]["code"] == "CAPACITY_REACHED"
            assert full["data"]["error_type"] == "SandboxError"
            with connect(f"{server.ws_url}?clone={token}") as twin:
                assert ask(twin, {"type": "state"})["data"]["task_id"]
                with connect(f"{server.ws_url}?clone={token}") as again:
                    reply = json.loads(again.recv(timeout=60))
                    assert reply["type"] == "error" and "already used" in reply["data"]["message"]
                with connect(server.ws_url) as third:  # a plain session over the cap
                    reply = json.loads(third.recv(timeout=60))
                    assert reply["data"]["code"] == "CAPACITY_REACHED"
            assert server.wait_stats(lambda s: s["sessions"] == 1)["sessions"] == 1
            assert ask(ws, {"type": "clone"})["type"] == "clone"
            assert server.stats()["parked_clones"] == 1
            assert server.wait_stats(lambda s: s["parked_clones"] == 0, timeout=30)[
                "parked_clones"] == 0
    finally:
        assert server.stop() == 0


@pytest.mark.slow
def test_sigterm_closes_every_session_and_container() -> None:
    from openenv.core.generic_client import GenericEnvClient

    from openenv_server import start_server

    server = start_server("CodeExec-Offline-v0", "split=smoke", "sandbox=docker")
    clients = []
    try:
        for i in range(2):
            c = GenericEnvClient(base_url=server.url, message_timeout_s=120).sync()
            c.connect()
            c.reset(index=i)
            c.step(_py("y = 1"))
            clients.append(c)
        assert server.stats()["sandbox_busy_hosts"] == 2
        pid = server.proc.pid
        assert _containers(pid)
        started = time.monotonic()
        assert server.stop() == 0
        assert time.monotonic() - started < 60
        assert _containers(pid) == []
    finally:
        for c in clients:
            try:
                c.close()
            except Exception:
                pass
        server.stop()


def _containers(owner_pid: int) -> list[str]:
    out = subprocess.run(["docker", "ps", "-aq", "--filter",
                          f"label=branchgym.sandbox.owner_pid={owner_pid}"],
                         capture_output=True, text=True, timeout=60).stdout
    return out.split()


def test_task_api_of_an_env_without_tasks_is_not_supported() -> None:
    # OpenEnv's task routes answer 501 for NotImplementedError; the env built only to look for a
    # task source is closed again.
    import gymnasium as gym

    from branchgym.integrations.openenv.environment import BranchEnvironment, ServeConfig

    closed = []

    class Spy(gym.Wrapper):
        def close(self):
            closed.append(True)
            super().close()

    class SpyConfig(ServeConfig):
        def make(self, split=None):
            return Spy(super().make(split))

    session = BranchEnvironment(SpyConfig("CartPole-v1"))
    with pytest.raises(NotImplementedError, match="CartPole-v1 has no task source"):
        session.list_splits()
    assert closed == [True]
    session.close()
