"""Local-backend specifics: the not-isolated warning, the bubblewrap jail, rlimits.

Both modes are tested on every machine that can run them: "jail" (bubblewrap: skipped off-CI
when it is not installed, a failure in CI) and "plain" (forced with ``bwrap=False``; as root
with an interpreter the sandbox uid cannot read it needs the ``allow_root`` opt-in).
"""

from __future__ import annotations

import ast
import os
import signal
import sys
import warnings

import pytest

from branchgym.sandbox import local
from branchgym.sandbox.limits import SandboxLimits
from branchgym.sandbox.local import LocalHost, LocalSandboxWarning
from branchgym.sandbox.pool import SandboxPool

MODES = ["jail", "plain"]


def _limits(request, mode: str, **kw) -> SandboxLimits:
    if mode == "jail":
        request.getfixturevalue("bwrap_jail")
        return SandboxLimits(**kw)
    return SandboxLimits(bwrap=False, allow_root=True, **kw)


def test_warns_once_that_it_does_not_isolate(monkeypatch):
    monkeypatch.setattr(local, "_WARNED", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        local.warn_not_isolated(" because no engine answers")
        local.warn_not_isolated(" because no engine answers")
    hits = [w for w in caught if issubclass(w.category, LocalSandboxWarning)]
    assert len(hits) == 1
    text = str(hits[0].message)
    assert "not isolation" in text and "because no engine answers" in text
    assert "backend='docker'" in text
    # it says what is and is not isolated: who runs the code, environment, processes
    assert "user code runs as" in text and "minimal environment" in text
    assert "RLIMIT_NPROC" in text or "no process limit" in text
    assert "Not isolated: the kernel" in text


def test_bwrap_jail_has_no_network_and_a_read_only_root(local_pool):
    with local_pool.acquire() as s:
        assert s.host.jailed
        r = s.run("import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=3)")
        assert r.error.startswith("OSError") and "unreachable" in r.error.lower()
        r = s.run("open('/usr/evil', 'w')")
        assert r.error.startswith("OSError") and "Read-only file system" in r.error
        # a private /tmp that shows only this host's own workspace root (and, when the checkout
        # or the venv lives in /tmp, the read-only paths the server needs)
        seen = set(ast.literal_eval(s.run("import os\nsorted(os.listdir('/tmp'))").stdout))
        tops = {os.path.relpath(p, os.path.realpath("/tmp")).split(os.sep)[0] for p in local.jail_tmp_binds()}
        assert seen == {os.path.basename(s.host.root)} | tops


def test_without_bwrap_the_same_protocol_works():
    limits = SandboxLimits(bwrap=False, allow_root=True, worker_memory_mb=256, file_size_mb=8)
    with SandboxPool("local", limits, warm=0) as pool, pool.acquire() as s:
        assert not s.host.jailed
        assert s.run("x = 6\nx * 7").stdout == "42\n"
        with s.fork() as f:
            assert f.run("x").stdout == "6\n"
        assert s.run("bytearray(1024 ** 3)").error == "MemoryError"
        r = s.run("open('f', 'wb').write(b'x' * 9 * 1024 * 1024)")
        assert "File too large" in r.error
        # HOME and TMPDIR are this host's own directories, not the trainer's
        r = s.run("import os, tempfile\n(os.environ['HOME'], tempfile.gettempdir())")
        home, tmp = ast.literal_eval(r.stdout)
        assert home.startswith(s.host.ws_root) and tmp.startswith(s.host.root + os.sep)


@pytest.mark.parametrize("mode", MODES)
def test_sigint_is_a_keyboard_interrupt_even_when_the_trainer_ignores_it(request, mode):
    # A trainer started in the background (`nohup`, `cmd &` in a script) ignores SIGINT, and
    # ignored signals stay ignored across exec: the server must restore Python's handler.
    limits = _limits(request, mode, preload=())
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        pool = SandboxPool("local", limits, warm=0)
        s = pool.acquire()  # the server process starts here, with SIGINT ignored
    finally:
        signal.signal(signal.SIGINT, old)
    try:
        r = s.run("import signal\nsignal.raise_signal(signal.SIGINT)")
        assert r.error == "KeyboardInterrupt", r
        assert s.run("2 + 2").stdout == "4\n"
    finally:
        s.close()
        pool.close()


@pytest.mark.parametrize("mode", MODES)
def test_host_process_and_files_go_away_on_close(request, mode):
    host = LocalHost.start(_limits(request, mode))
    root, proc = host.root, host.proc
    assert proc is not None and proc.poll() is None and os.path.isdir(root)
    assert host.jailed == (mode == "jail") and host.isolation.startswith("user code runs as")
    host.close()
    host.close()
    assert proc.poll() is not None and not os.path.exists(root)


def test_server_failure_is_a_clear_error(monkeypatch):
    from branchgym.errors import SandboxError

    monkeypatch.setattr(local, "server_path", lambda: "/nonexistent/server.py")
    with pytest.raises(SandboxError, match="did not say hello.*server log"):
        LocalHost.start(SandboxLimits(bwrap=False, allow_root=True), timeout_s=10)


def test_falls_back_without_bwrap_when_the_jail_cannot_start(monkeypatch):
    # A bwrap that is installed but cannot start here (no user namespaces): a real process
    # that fails the way bwrap does, whether or not bubblewrap is installed on this machine.
    real = LocalHost._command

    def broken_jail(self, fd):
        cmd = real(self, fd)
        if not self.jailed:
            return cmd
        return [sys.executable, "-c", "import sys; sys.exit('bwrap: setting up uid map: "
                                      "Permission denied')"]

    monkeypatch.setattr(local, "bwrap_available", lambda: True)
    monkeypatch.setattr(LocalHost, "_command", broken_jail)
    with pytest.warns(LocalSandboxWarning, match="without bubblewrap"):
        host = LocalHost.start(SandboxLimits(bwrap=True, allow_root=True), timeout_s=10)
    try:
        assert not host.jailed and host.limits.bwrap is False
    finally:
        host.close()


def test_stale_workspace_roots_of_dead_processes_are_removed(tmp_path, monkeypatch):
    import subprocess
    import sys
    import tempfile

    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True).stdout)
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    stale = tmp_path / f"branchgym-local-{dead}-abc123"
    live = tmp_path / f"branchgym-local-{os.getpid()}-def456"
    stale.mkdir()
    live.mkdir()
    monkeypatch.setattr(local, "_CLEANED", False)
    local._remove_stale_dirs()
    assert not stale.exists() and live.exists()
