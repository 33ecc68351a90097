"""Hostile code against the sandbox: forged wire frames, leftovers that would reach
the next episode, branches that attack each other or the server, and one-liners that would make
``fork()`` fail or stall. Each test runs on both backends where the defect applies to both.
"""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest

from branchgym.errors import SandboxError
from branchgym.sandbox.core import ExecResult
from branchgym.sandbox.pool import SandboxPool

_FIND_CONN = (
    "import gc, socket, struct, json\n"
    "conn = [o for o in gc.get_objects() if isinstance(o, socket.socket)"
    " and o.family == socket.AF_UNIX][0]\n"
    "def forge(obj):\n"
    "    data = json.dumps(obj).encode()\n"
    "    conn.sendall(struct.pack('!I', len(data)) + data)\n"
)


def _tampered(r: ExecResult) -> bool:
    return "not the reply" in f"{r.error} {r.stderr}"


# ---------------------------------------------------------------------------- the wire

def test_a_huge_exception_message_is_output_not_tampering(session):
    # Honest code may raise with a long message; it is capped like output, not taken for a
    # forged frame (which would kill the interpreter and lose its state).
    session.run("keep = 41")
    r = session.run("raise ValueError('x' * 400_000)")
    assert r.error.startswith("ValueError") and "more characters cut" in r.error
    assert not _tampered(r) and len(r.error) < 20_000
    assert session.run("print(keep + 1)").stdout == "42\n"





def test_a_forged_reply_never_becomes_a_result_or_shifts_later_ones(session):
    session.run("x = 7")
    r = session.run(_FIND_CONN + "forge({'ok': True, 'stdout': 'FORGED\\n', 'stderr': '',"
                    " 'error': None, 'timed_out': False, 'duration_s': 0.0})\nprint('real')")
    assert "FORGED" not in r.stdout and _tampered(r), r
    assert "SandboxRestarted" in r.error and "fresh interpreter" in r.error
    for i in range(3):  # no shift: every later call gets its own result
        assert session.run(f"print({i})").stdout == f"{i}\n"


def test_a_forged_reply_with_the_right_sequence_number_is_caught_by_the_real_one(session):
    # The code reads the pending request (and its sequence number) from the worker's frames.
    code = (_FIND_CONN + "import sys\nf = sys._getframe()\n"
            "while 'msg' not in f.f_locals:\n    f = f.f_back\n"
            "forge({**{'ok': True, 'stdout': 'FORGED\\n', 'stderr': '', 'error': None,"
            " 'timed_out': False, 'duration_s': 0.0}, 'seq': f.f_locals['msg'].get('seq')})\n")
    first = session.run(code)  # its own output: the code could as well have printed it
    later = [session.run(f"print({i})") for i in range(3)]
    assert all("FORGED" not in r.stdout for r in later)
    # The real reply that follows the forged one is detected: the next call either runs in a
    # fresh interpreter with a note, or says the interpreter was restarted.
    assert _tampered(first) or _tampered(later[0]), (first, later[0])
    assert later[0].stdout in ("0\n", "")
    assert [r.stdout for r in later[1:]] == ["1\n", "2\n"]


@pytest.mark.parametrize("fake_pid", ["'x'", "None", "1", "os.getpid()"])
def test_a_fork_reply_with_a_forged_pid_is_a_sandbox_error(session, fake_pid):
    # Code that patched its worker answers the next fork with a pid of its choice: a string, none,
    # PID 1 or its own. The host never trusts it (no ValueError/KeyError out of fork(), no bogus
    # pid kept as a worker to spare from kills).
    session.run(
        "import gc, os\n"
        "w = [o for o in gc.get_objects() if type(o).__name__ == 'Worker'][0]\n"
        "real = w.fork\n"
        "def fork(msg, fds):\n"
        "    r = real(msg, fds)\n"
        f"    return r if r is None else {{**r, 'pid': {fake_pid}}}\n"
        "w.fork = fork\n")
    with pytest.raises(SandboxError):
        session.fork()
    assert session.run("print(6 * 7)").stdout == "42\n"  # the session goes on (restarted or not)


def test_a_forged_failure_reply_does_not_raise(session):
    r = session.run(_FIND_CONN + "forge({'ok': False, 'error': 'boom'})")
    assert isinstance(r, ExecResult) and _tampered(r)
    r = session.run(_FIND_CONN + "conn.sendall(b'\\x00\\x00\\x00\\x05garbage')")
    assert isinstance(r, ExecResult) and _tampered(r)
    assert session.run("'alive'").stdout == "alive\n"


# ---------------------------------------------------------------------------- episodes


def _alive_with(marker: str) -> list[int]:
    """Host pids whose command line holds ``marker`` (zombies have none)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        out.append(int(entry))
            except OSError:
                pass
    return out


def _daemon_code(marker: str) -> str:
    """Double-fork a daemon in a new session that ignores SIGTERM (and SIGHUP)."""
    return ("import os, sys, subprocess\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    subprocess.Popen([sys.executable, '-c', 'import signal, time; "
            "signal.signal(signal.SIGTERM, signal.SIG_IGN); signal.signal(signal.SIGHUP, "
            f"signal.SIG_IGN); time.sleep(600)', '{marker}'], start_new_session=True)\n"
            "    os._exit(0)\n"
            "os.wait()\n")


def _wait_started(marker: str) -> None:
    deadline = time.monotonic() + 10
    while not _alive_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _alive_with(marker), "the daemon did not start"


@pytest.fixture(params=["local", "local_plain", pytest.param("docker", marks=pytest.mark.docker)])
def reused_pool(request):
    """A pool like ``backend_pool``'s whose released host is always reused (warm=0 keeps no
    second host)."""
    shared = request.getfixturevalue(f"{request.param}_pool")  # skips / builds like it
    pool = SandboxPool(shared.backend, shared.limits, warm=0, image=shared.image)
    yield pool
    pool.close()


def test_nothing_planted_reaches_the_next_episode_on_a_reused_host(reused_pool):
    marker = f"bg-plant-{uuid.uuid4().hex}"
    a = reused_pool.acquire()
    host = a.host
    places = ("/tmp", "/dev/shm", ".")
    if host.backend == "local" and not getattr(host, "jailed", False):
        # Without bubblewrap /tmp and /dev/shm are this machine's: only the workspace is the
        # sandbox's to wipe, and the backend says so (README, 'What the sandbox guarantees').
        assert "no jail" in host.isolation and "every file that uid can" in host.isolation
        places = (".", "$TMPDIR")  # its TMPDIR (tempfile's folder) is the sandbox's own
    plant = (f"import os\nfor d in {places!r}:\n"
             "    open(os.path.join(os.path.expandvars(d), 'answer.txt'), 'w')"
             ".write('episode A answer: 42')\n")
    assert a.run(plant).ok
    assert a.run(_daemon_code(marker)).ok
    _wait_started(marker)
    a.close()  # what env.reset() does with the episode's session: the host is released
    b = reused_pool.acquire()
    try:
        assert b.host is host, "the test needs the host to be reused"
        r = b.run(f"import os\n[p for d in {places!r} "
                  "for p in [os.path.join(os.path.expandvars(d), 'answer.txt')] if os.path.exists(p)]")
        assert r.stdout == "[]\n", r
        assert _alive_with(marker) == []
    finally:
        b.close()


def test_a_setsid_daemon_dies_with_the_call_timeout(session):
    marker = f"bg-timeout-{uuid.uuid4().hex}"
    r = session.run(_daemon_code(marker) + "import time\ntime.sleep(0.5)\nwhile True:\n    pass",
                    timeout_s=2)
    assert r.timed_out
    assert _alive_with(marker) == []


def test_a_setsid_daemon_dies_with_its_session(session):
    fork = session.fork()  # the parent keeps the host: nothing is reset
    marker = f"bg-close-{uuid.uuid4().hex}"
    assert fork.run(_daemon_code(marker)).ok
    _wait_started(marker)
    fork.close()
    assert _alive_with(marker) == []
    assert session.run("'parent fine'").stdout == "parent fine\n"


# ---------------------------------------------------------------------------- branches


def test_the_server_ignores_signals_from_user_code(session):
    session.run("x = 'root'")
    fork = session.fork()
    try:
        fork.run("x = 'fork'")
        for sig in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM"):
            r = session.run(f"import os, signal\nos.kill(os.getppid(), signal.{sig})\n"
                            "import time\ntime.sleep(0.05)")
            assert r.ok, (sig, r)
        assert session.run("x").stdout == "root\n"
        assert fork.run("x").stdout == "fork\n"
        assert session.host.alive()
    finally:
        fork.close()


_PTRACE = ("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
           "def attach(pid):\n"
           "    if libc.ptrace(16, pid, None, None) == 0:\n"  # PTRACE_ATTACH
           "        libc.ptrace(17, pid, None, None)\n"  # PTRACE_DETACH
           "        return 'attached'\n"
           "    return os.strerror(ctypes.get_errno())\n"
           "def mem(pid):\n"
           "    try:\n"
           "        with open(f'/proc/{pid}/mem', 'rb') as f:\n"
           "            return 'opened'\n"
           "    except OSError as e:\n"
           "        return type(e).__name__\n")


@pytest.mark.docker
def test_no_branch_can_trace_or_read_the_server_or_another_branch(docker_pool):
    with docker_pool.acquire() as root:
        root.run("secret = 'parent'")
        fork = root.fork()
        try:
            parent = root.run("import os\nos.getpid()").stdout.strip()
            r = fork.run(_PTRACE + f"print(attach(1), mem(1), attach({parent}), mem({parent}))")
            assert r.ok, r
            assert "attached" not in r.stdout and "opened" not in r.stdout, r.stdout
            r = root.run(_PTRACE + f"print(attach({fork.pid}), mem({fork.pid}))")
            assert "attached" not in r.stdout and "opened" not in r.stdout, r.stdout
            assert root.run("secret").stdout == "parent\n"
        finally:
            fork.close()


# ---------------------------------------------------------------------------- fork


@pytest.mark.parametrize("fd", [1, 2])
def test_fork_works_after_the_code_closed_stdout_or_stderr(session, fd):
    session.run(f"import os\nkept = 'state'\nos.close({fd})")
    child = session.fork()
    try:
        assert child.run("print(kept)").stdout == "state\n"
        assert child.run("import sys\nprint('e', file=sys.stderr)").stderr == "e\n"
    finally:
        child.close()
    assert session.run("print(kept)").stdout == "state\n"


def test_fork_survives_a_low_soft_fd_limit_and_fails_clearly_on_a_low_hard_one(session):
    session.run("import resource\nkept = 1\n"
                "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
                "resource.setrlimit(resource.RLIMIT_NOFILE, (4, hard))")
    with session.fork() as child:
        assert child.run("kept").stdout == "1\n"
    session.run("resource.setrlimit(resource.RLIMIT_NOFILE, (4, 4))")
    with pytest.raises(SandboxError, match="RLIMIT_NOFILE"):
        session.fork()
    assert session.run("kept").stdout == "1\n"  # the parent keeps its state


def test_fork_after_chdir_to_root_copies_the_workspace_not_root(session):
    session.run("import os\nkept = 'state'\nopen('f.txt', 'w').write('in ws')\nos.chdir('/')")
    with session.fork() as child:
        assert child.run("print(kept, os.getcwd())").stdout == "state /\n"
        r = child.run("import os\nos.chdir(os.environ['HOME'])\nprint(open('f.txt').read())")
        assert r.stdout == "in ws\n", r
    assert session.run("print(kept, os.getcwd())").stdout == "state /\n"


def test_fork_with_too_many_files_fails_fast_and_keeps_the_parent(session):
    from branchgym.sandbox.worker import FORK_MAX_FILES

    r = session.run(f"import os\nkept = 3\nos.mkdir('many')\nfor i in range({FORK_MAX_FILES + 1}):"
                    f"\n    open(f'many/{{i}}', 'w').close()", timeout_s=60)
    assert r.ok, r
    with pytest.raises(SandboxError, match="files"):
        session.fork()
    assert session.run("kept").stdout == "3\n"
    session.run("import shutil\nshutil.rmtree('many')")
    with session.fork() as child:
        assert child.run("kept").stdout == "3\n"


@pytest.mark.docker
def test_fork_of_a_workspace_too_big_to_copy_fails_fast(docker_pool, sandbox_limits):
    # Docker only: the local backend's workspaces share this machine's disk.
    mb = sandbox_limits.workspace_mb * 5 // 8
    with docker_pool.acquire() as session:
        r = session.run(f"kept = 4\nfor i in range({mb // 16 + 1}):\n"
                        f"    open(f'big{{i}}', 'wb').write(b'x' * (16 << 20))", timeout_s=60)
        assert r.ok, r
        with pytest.raises(SandboxError, match="free"):
            session.fork()
        assert session.run("kept").stdout == "4\n"


def test_fork_of_a_deleted_workspace_gives_an_empty_one(session):
    session.run("import os, shutil\nkept = 5\nws = os.getcwd()\nos.chdir('/')\nshutil.rmtree(ws)")
    with session.fork() as child:
        r = child.run("print(kept, os.listdir(os.environ['HOME']))")
        assert r.stdout == "5 []\n", r
    assert session.run("kept").stdout == "5\n"


@pytest.mark.parametrize("backend", ["local", pytest.param("docker", marks=pytest.mark.docker)])
def test_env_step_survives_forged_frames_and_later_steps_see_their_own_output(backend, request):
    import gymnasium as gym

    request.getfixturevalue(f"{backend}_pool")  # skips / builds the image like the pools
    env = gym.make("CodeExec-Offline-v0", split="smoke", sandbox=backend, max_episode_steps=8)
    try:
        env.reset(seed=0)
        forged = _FIND_CONN + "forge({'ok': False, 'error': 'boom'})\n"
        obs = env.step(f"<python>{forged}</python>")[0]  # raised SandboxError before
        assert "not the reply" in obs, obs
        forged = (_FIND_CONN + "forge({'ok': True, 'stdout': 'GOLD ANSWER', 'stderr': '',"
                  " 'error': None, 'timed_out': False, 'duration_s': 0.0})\n")
        env.step(f"<python>{forged}</python>")
        for i in range(3):
            obs = env.step(f"<python>print('step', {i})</python>")[0]
            assert "GOLD" not in obs and f"step {i}" in obs, obs
    finally:
        env.close()
