"""Docker-only guarantees: isolation, hardening, orphans, recovery, scale (real Docker engine)."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest

from branchgym.errors import SandboxError
from branchgym.sandbox.docker import LABEL, _client, reap_orphans
from branchgym.sandbox.image import image_tag
from branchgym.sandbox.pool import SandboxPool


pytestmark = pytest.mark.docker


@pytest.fixture
def dsession(docker_pool):
    s = docker_pool.acquire()
    yield s
    s.close()


def _container(session):
    return _client().containers.get(session.host.container_id)


def test_container_is_hardened(dsession, sandbox_limits):
    attrs = _container(dsession).attrs
    hc = attrs["HostConfig"]
    assert hc["NetworkMode"] == "none"
    assert hc["ReadonlyRootfs"] is True
    assert hc["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in hc["SecurityOpt"]
    assert hc["Memory"] == sandbox_limits.memory_mb * 1024 * 1024
    assert hc["MemorySwap"] == hc["Memory"]
    assert hc["PidsLimit"] == sandbox_limits.pids
    assert hc["NanoCpus"] == int(sandbox_limits.cpus * 1e9)
    assert f"size={sandbox_limits.workspace_mb}m" in hc["Tmpfs"]["/workspace"]
    labels = attrs["Config"]["Labels"]
    assert labels[LABEL] == "1" and labels[f"{LABEL}.owner_pid"] == str(os.getpid())
    assert f"{LABEL}.started" in labels and f"{LABEL}.owner" in labels
    assert attrs["Config"]["Image"] == image_tag()
    r = dsession.run("import os\n(os.getuid(), os.getgid(), os.getpid() != 1)")
    assert r.stdout == "(10001, 10001, True)\n"
    r = dsession.run("open('/etc/evil', 'w')")
    assert r.error.startswith("OSError") and "Read-only file system" in r.error
    r = dsession.run("open('/proc/self/status').read().split('CapEff:')[1].split()[0]")
    assert r.stdout == "0000000000000000\n"


def test_no_network(dsession):
    r = dsession.run("import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=3)")
    assert r.error.startswith("OSError") and "unreachable" in r.error.lower()
    r = dsession.run("import socket\nsocket.getaddrinfo('deb.debian.org', 80)")
    assert r.error.startswith("socket.gaierror") or r.error.startswith("gaierror")
    r = dsession.run("import socket\nsorted(n for _, n in socket.if_nameindex())")
    assert r.stdout == "['lo']\n"


def test_host_files_are_invisible(dsession, tmp_path):
    secret = tmp_path / f"secret-{uuid.uuid4().hex}.txt"
    secret.write_text("host secret")
    r = dsession.run(f"import os\n(os.path.exists({str(secret)!r}), "
                     f"os.path.exists('/var/run/docker.sock'), os.path.exists('/root/.cache'))")
    assert r.stdout == "(False, False, False)\n"
    r = dsession.run("import os\nos.listdir('/run/branchgym')")
    assert r.stdout == "[]\n"  # the control socket is gone once the server has connected


def test_fork_bomb_is_contained(dsession):
    dsession.run("open('survivor.txt', 'w').write('kept')")
    r = dsession.run("import os\nwhile True:\n    try:\n        os.fork()\n"
                     "    except OSError:\n        pass", timeout_s=2)
    # 250 spinning processes on one CPU: the interrupt is usually too slow, so the group is
    # SIGKILLed and the interpreter restarted; either way the session answers again
    assert r.timed_out, r
    assert dsession.run("open('survivor.txt').read()").stdout == "kept\n"
    # the pids limit held, and every bomb process is gone
    count = ("import os, time\ntime.sleep(0.2)\nlen([p for p in os.listdir('/proc') "
             "if p.isdigit()])")
    assert int(dsession.run(count).stdout) < 10  # none left, not even as zombies


def test_filling_the_disk_is_contained(dsession):
    r = dsession.run("i = 0\nwhile True:\n    with open(f'part{i}', 'wb') as f:\n"
                     "        f.write(b'x' * 8 * 1024 * 1024)\n    i += 1", timeout_s=30)
    assert r.error.startswith("OSError") and "No space left on device" in r.error
    assert dsession.run("import os\nfor n in os.listdir('.'):\n    os.remove(n)\n'freed'"
                        ).stdout == "freed\n"
    child = dsession.fork()  # and the workspace can be copied again
    child.close()


def test_killed_container_recovers_once_then_raises(sandbox_limits):
    with SandboxPool("docker", sandbox_limits, warm=0) as pool:
        s = pool.acquire()
        s.run("x = 1")
        _client().containers.get(s.host.container_id).kill()
        r = s.run("'after'")  # died between calls: recovered, then the code ran
        assert r.ok and r.stdout == "after\n"
        assert r.stderr.startswith("[sandbox: ") and "workspace files are lost" in r.stderr
        assert s.run("x").error == "NameError: name 'x' is not defined"
        pool.close()  # stops the container, and no replacement host can be started now
        with pytest.raises(SandboxError, match="recovery attempt failed"):
            s.run("1")


def test_orphans_of_a_killed_host_process_are_removed(sandbox_limits):
    script = textwrap.dedent("""
        import sys, time
        from branchgym.sandbox.pool import SandboxPool
        from branchgym.sandbox.limits import SandboxLimits
        pool = SandboxPool("docker", SandboxLimits(memory_mb=256, worker_memory_mb=128), warm=0)
        s = pool.acquire()
        print(s.host.container_id, flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        cid = proc.stdout.readline().strip()
        assert cid, "the child did not start a sandbox"
        assert _client().containers.get(cid).status == "running"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    # "the next start": a new pool reaps before anything else
    SandboxPool("docker", sandbox_limits, warm=0).close()
    deadline = time.time() + 20
    while time.time() < deadline:
        ids = [c.id for c in _client().containers.list(all=True, filters={"label": f"{LABEL}=1"})]
        if cid not in ids:
            break
        time.sleep(0.2)
    assert cid not in ids


def test_reaper_removes_a_stuck_container_of_a_dead_owner():
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True)
    dead_pid = int(done.stdout)
    import socket as _socket

    c = _client().containers.run(
        image_tag(), command=["python3", "-c", "import time; time.sleep(600)"], detach=True,
        network_mode="none", labels={LABEL: "1",
                                     f"{LABEL}.owner": f"{_socket.gethostname()}:{dead_pid}:1"})
    try:
        assert c.id in reap_orphans()
    finally:
        try:
            c.remove(force=True)
        except Exception:
            pass


def test_200_concurrent_sessions_over_8_containers(sandbox_limits):
    results: dict[int, str] = {}
    errors: list[BaseException] = []
    with SandboxPool("docker", sandbox_limits, size=8, placement="spread") as pool:

        def work(i: int) -> None:
            try:
                with pool.acquire() as s:
                    s.run(f"i = {i}\nopen('mine.txt', 'w').write(str(i))")
                    with s.fork() as f:
                        f.run("i = i * 1000")
                        r = f.run("import os\n(i, open('mine.txt').read(), os.getcwd())")
                    results[i] = r.stdout + s.run("i").stdout + s.host.name
            except BaseException as e:  # collected and asserted below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(200)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors[:3]
        assert sorted(results) == list(range(200))
        for i, text in results.items():
            assert text.startswith(f"({i * 1000}, '{i}', '/workspace/s") and f"\n{i}\n" in text
        hosts = {text.rsplit("\n", 1)[1] for text in results.values()}
        assert len(hosts) == 8 and len(pool.hosts()) == 8


def test_container_memory_limit_kills_workers_not_the_server(sandbox_limits):
    limits = sandbox_limits.__class__(memory_mb=512, worker_memory_mb=400, preload=())
    with SandboxPool("docker", limits, warm=0) as pool, pool.acquire() as s:
        s.run("keep = 'kept'")
        # three processes touch 300 MB each, each under RLIMIT_AS, together over the cgroup
        r = s.run("import os, time\npids = []\nfor i in range(3):\n    pid = os.fork()\n"
                  "    if pid == 0:\n        b = bytearray(300 * 1024 * 1024)\n"
                  "        for j in range(0, len(b), 4096):\n            b[j] = 1\n"
                  "        time.sleep(1)\n        os._exit(0)\n    pids.append(pid)\n"
                  "sorted(os.waitpid(p, 0)[1] for p in pids)", timeout_s=30)
        assert r.ok, r
        statuses = ast.literal_eval(r.stdout)
        assert 9 in statuses  # the OOM killer chose a worker process (oom_score_adj=1000)
        assert s.run("keep").stdout == "kept\n" and s.host.alive()
