"""Local-backend specifics: the not-isolated warning, the bubblewrap jail, rlimits."""

from __future__ import annotations

import ast
import os
import warnings

import pytest

from branchgym.sandbox import local
from branchgym.sandbox.limits import SandboxLimits
from branchgym.sandbox.local import LocalHost, LocalSandboxWarning, bwrap_available
from branchgym.sandbox.pool import SandboxPool


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


@pytest.mark.skipif(not bwrap_available(), reason="bubblewrap is not installed here")
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
    limits = SandboxLimits(bwrap=False, worker_memory_mb=256, file_size_mb=8)
    with SandboxPool("local", limits, warm=0) as pool, pool.acquire() as s:
        assert not s.host.jailed
        assert s.run("x = 6\nx * 7").stdout == "42\n"
        with s.fork() as f:
            assert f.run("x").stdout == "6\n"
        assert s.run("bytearray(1024 ** 3)").error == "MemoryError"
        r = s.run("open('f', 'wb').write(b'x' * 9 * 1024 * 1024)")
        assert "File too large" in r.error


def test_host_process_and_files_go_away_on_close():
    host = LocalHost.start(SandboxLimits())
    root, proc = host.root, host.proc
    assert proc is not None and proc.poll() is None and os.path.isdir(root)
    host.close()
    host.close()
    assert proc.poll() is not None and not os.path.exists(root)


def test_server_failure_is_a_clear_error(monkeypatch):
    from branchgym.errors import SandboxError

    monkeypatch.setattr(local, "server_path", lambda: "/nonexistent/server.py")
    with pytest.raises(SandboxError, match="did not say hello.*server log"):
        LocalHost.start(SandboxLimits(bwrap=False), timeout_s=10)


def test_falls_back_without_bwrap_when_the_jail_cannot_start(monkeypatch):
    real = LocalHost._command

    def broken_jail(self, fd):
        cmd = real(self, fd)
        return ["bwrap", "--no-such-option", *cmd[1:]] if self.jailed else cmd

    monkeypatch.setattr(LocalHost, "_command", broken_jail)
    with pytest.warns(LocalSandboxWarning, match="without bubblewrap"):
        host = LocalHost.start(SandboxLimits(bwrap=True), timeout_s=10)
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
