"""Hostile code against the local backend, in its jail (bubblewrap) and without it.

The local backend is not Docker: it shares the kernel and (without the jail) the filesystem and
the network with the trainer. What it must still hold: user code never sees the trainer's
secrets, never runs as root unless the user opted in, and cannot fork the machine down.
"""

from __future__ import annotations

import ast
import os
import stat
import sys
import warnings

import pytest

from branchgym.errors import SandboxError
from branchgym.sandbox import local
from branchgym.sandbox.limits import SandboxLimits
from branchgym.sandbox.local import LocalSandboxWarning
from branchgym.sandbox.pool import SandboxPool

MODES = ["jail", "plain"]
SECRET = "hf_hostile_test_secret_0123456789"


def _limits(request, mode: str, **kw) -> SandboxLimits:
    """Small limits; for "plain" (no jail) as root, an interpreter the sandbox uid can read, so
    that user code can leave root (the suite runs as root in CI)."""
    base = dict(worker_memory_mb=512, file_size_mb=32, pids=256, max_output_chars=5000,
                preload=(), **kw)
    if mode == "jail":
        request.getfixturevalue("bwrap_jail")
        return SandboxLimits(**base)
    if os.geteuid() != 0:
        pytest.skip("not root: without a jail the local backend runs user code as this user "
                    "(it cannot change uid), and its warning says so")
    uid = SandboxLimits().local_uid
    for python in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(python) and local.readable_by(python, uid, uid):
            return SandboxLimits(bwrap=False, python=python, **base)
    pytest.skip(f"no Python on this machine that uid {uid} can read (a jail-less local "
                f"sandbox as root then needs allow_root, tested below)")


def _pool(limits: SandboxLimits) -> SandboxPool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LocalSandboxWarning)
        return SandboxPool("local", limits, warm=0)


@pytest.mark.parametrize("mode", MODES)
def test_secrets_in_the_trainer_environment_do_not_reach_user_code(request, mode, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with _pool(_limits(request, mode)) as pool, pool.acquire() as s:
        r = s.run("import os\nsorted(os.environ)")
        names = ast.literal_eval(r.stdout)
        assert "HF_TOKEN" not in names and "OPENAI_API_KEY" not in names
        assert SECRET not in s.run("open('/proc/self/environ', 'rb').read()").stdout
        # nor through the trainer's own /proc entry (same uid, or same pid namespace)
        r = s.run(f"open('/proc/{os.getpid()}/environ', 'rb').read()")
        assert r.error and r.error.split(":")[0] in {"PermissionError", "FileNotFoundError"}, r
        assert SECRET not in r.stdout


@pytest.mark.parametrize("mode", MODES)
def test_user_code_is_not_root_and_cannot_read_root_only_files(request, mode, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the test process is not root: nothing to drop")
    secret = os.path.join("/var/tmp", f"branchgym-root-only-{os.getpid()}")
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, SECRET.encode())
    os.close(fd)
    try:
        with _pool(_limits(request, mode)) as pool, pool.acquire() as s:
            r = s.run("import os\n(os.getuid(), os.geteuid(), os.getgid(), os.getgroups())")
            uid, euid, gid, groups = ast.literal_eval(r.stdout)
            assert uid != 0 and euid != 0 and gid != 0 and 0 not in groups
            caps = s.run("[l for l in open('/proc/self/status') if l.startswith('CapEff')][0]")
            assert caps.stdout.split()[-1].rstrip("'\\n") == "0000000000000000", caps
            r = s.run(f"open({secret!r}).read()")
            assert r.error.startswith("PermissionError"), r
            # /root: unreadable, or (in the jail) an empty tmpfs showing only the re-bound
            # interpreter when it lives there
            r = s.run("import os\nos.listdir('/root')")
            rebound = {p.split(os.sep)[2] for p in local.needed_paths(s.host.limits.python or
                                                                      sys.executable)
                       if p.startswith("/root/")}
            assert (r.error or "").startswith("PermissionError") or (
                set(ast.literal_eval(r.stdout)) <= rebound), r
    finally:
        os.unlink(secret)


@pytest.mark.parametrize("mode", MODES)
def test_a_fork_bomb_is_bounded_by_the_process_limit(request, mode):
    limits = _limits(request, mode)
    code = (
        "import os, signal, time\n"
        "kids, err = [], None\n"
        "try:\n"
        "    for _ in range(600):\n"
        "        pid = os.fork()\n"
        "        if pid == 0:\n"
        "            time.sleep(60)\n"
        "            os._exit(0)\n"
        "        kids.append(pid)\n"
        "except OSError as e:\n"
        "    err = type(e).__name__\n"
        "for pid in kids:\n"
        "    os.kill(pid, signal.SIGKILL)\n"
        "for pid in kids:\n"
        "    os.waitpid(pid, 0)\n"
        "(len(kids), err)"
    )
    with _pool(limits) as pool, pool.acquire() as s:
        r = s.run(code, timeout_s=60)
        n, err = ast.literal_eval(r.stdout)
        assert err == "BlockingIOError" and n < limits.pids, r
        assert s.run("2 + 2").stdout == "4\n"  # the session is still usable


def test_as_root_without_a_jail_it_refuses_unless_the_user_opts_in(tmp_path, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("the test process is not root")
    monkeypatch.delenv(local.ALLOW_ROOT_ENV, raising=False)
    hidden = tmp_path / "hidden"  # an interpreter the sandbox uid cannot reach
    hidden.mkdir()
    os.chmod(hidden, stat.S_IRWXU)
    os.symlink(os.path.realpath(sys.executable), hidden / "python3")
    limits = SandboxLimits(bwrap=False, python=str(hidden / "python3"), preload=())
    with pytest.raises(SandboxError, match=r"(?s)root.*bubblewrap.*allow_root"):
        local.LocalHost.start(limits, timeout_s=20)
    with pytest.warns(LocalSandboxWarning, match="as root"):
        host = local.LocalHost.start(SandboxLimits(bwrap=False, python=str(hidden / "python3"),
                                                   preload=(), allow_root=True), timeout_s=20)
    try:
        assert host.uid == 0 and not host.jailed
    finally:
        host.close()
    monkeypatch.setenv(local.ALLOW_ROOT_ENV, "1")  # the same opt-in from the environment
    with pytest.warns(LocalSandboxWarning, match="as root"):
        local.LocalHost.start(limits, timeout_s=20).close()
