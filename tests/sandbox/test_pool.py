"""Pool behaviour: validation, warm hosts, reuse after reset, spread placement, cleanup."""

from __future__ import annotations

import time

import pytest

from branchgym.errors import ConfigError, SandboxError
from branchgym.sandbox.limits import SandboxLimits
from branchgym.sandbox.pool import SandboxPool


@pytest.mark.parametrize("kwargs,match", [({"backend": "podman"}, "backend"),
                                          ({"placement": "random"}, "placement"),
                                          ({"warm": -1}, "warm"), ({"size": 0}, "size")])
def test_bad_arguments_are_clear(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        SandboxPool(**kwargs)


def test_warm_host_is_ready_and_reused_after_reset():
    with SandboxPool("local", SandboxLimits(), warm=1) as pool:
        deadline = time.time() + 30
        while pool.stats()["idle"] < 1 and time.time() < deadline:
            time.sleep(0.02)
        assert pool.stats()["idle"] == 1
        s = pool.acquire()
        first = s.host
        s.run("open('left_behind', 'w').write('x')\nimport subprocess, sys\n"
              "bg = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])")
        s.close()  # returns at once: the reset runs in the background
        s2, s3 = pool.acquire(), pool.acquire()
        assert first in (s2.host, s3.host)  # reset made it clean, so it was reused
        again = s2 if s2.host is first else s3
        r = again.run("import os\n(os.listdir('.'), [p for p in os.listdir('..') if p != "
                      "os.path.basename(os.getcwd())])")
        assert r.stdout == "([], [])\n"
        s2.close()
        s3.close()
        assert pool.stats()["started_total"] <= 3


def test_released_hosts_are_reused_by_a_group_that_resets_every_round():
    # A sync vector env / GRPO group: n sessions open, all closed, n opened again, every round.
    # The pool keeps as many reset hosts as were busy at once, so no round starts a new server.
    with SandboxPool("local", SandboxLimits(), warm=1) as pool:
        for _ in range(4):
            sessions = [pool.acquire() for _ in range(4)]
            for s in sessions:
                assert s.run("1 + 1").stdout == "2\n"
            for s in sessions:
                s.close()
        assert pool.stats()["started_total"] <= 5  # 4 at once + the warm spare


def test_concurrent_short_episodes_reuse_their_hosts_every_round():
    # An RL worker's round: n episodes start at once, each runs a call and closes, so they are
    # never all busy at one instant. The pool counts the callers still waiting for a host, keeps
    # that many reset hosts, so the rounds together start no more than n servers and the warm
    # spare (before: ~3 new hosts every round).
    import threading

    n = 4
    with SandboxPool("local", SandboxLimits(), warm=1) as pool:
        def episode(barrier):
            barrier.wait()
            s = pool.acquire()
            assert s.run("1 + 1").stdout == "2\n"
            s.close()

        for _ in range(5):
            barrier = threading.Barrier(n, timeout=30)
            threads = [threading.Thread(target=episode, args=(barrier,)) for _ in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
        assert pool.stats()["started_total"] <= n + 1


def test_callers_of_a_cold_pool_start_their_hosts_in_parallel():
    # The first round of a rollout asks for many sessions at once. Each start waits here until
    # a second start has begun: starts made one after another would break the barrier.
    import threading

    barrier = threading.Barrier(2, timeout=20)
    with SandboxPool("local", SandboxLimits(), warm=0) as pool:
        start = pool._factory

        def factory():
            barrier.wait()
            return start()

        pool._factory = factory
        got: list = []
        threads = [threading.Thread(target=lambda: got.append(pool.acquire())) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(got) == 2 and got[0].host is not got[1].host
        for s in got:
            s.close()


def test_a_tree_keeps_its_host_until_the_last_fork_closes():
    with SandboxPool("local", SandboxLimits(), warm=0) as pool:
        root = pool.acquire()
        child = root.fork()
        other = pool.acquire()
        assert child.host is root.host and other.host is not root.host
        root.close()
        assert child.run("'alive'").stdout == "alive\n"
        assert pool.stats()["busy"] == 2
        child.close()
        other.close()
        assert pool.stats()["busy"] == 0


def test_spread_placement_balances_root_sessions():
    with SandboxPool("local", SandboxLimits(), size=3, placement="spread") as pool:
        sessions = [pool.acquire() for _ in range(9)]
        counts: dict[str, int] = {}
        for s in sessions:
            counts[s.host.name] = counts.get(s.host.name, 0) + 1
        assert sorted(counts.values()) == [3, 3, 3]
        for s in sessions:
            s.close()


def test_closed_pool_refuses_and_stops_everything():
    pool = SandboxPool("local", SandboxLimits(), warm=0)
    s = pool.acquire()
    proc = s.host.proc
    pool.close()
    pool.close()
    assert proc.poll() is not None
    with pytest.raises(SandboxError, match="closed"):
        pool.acquire()


def test_a_reset_racing_a_close_is_a_failed_reset_not_a_crash():
    # The pool resets released hosts on a thread of its own while close() may stop them: a reset
    # that passed its first check, then found the control connection gone, raised AttributeError.
    import threading

    with SandboxPool("local", SandboxLimits(), warm=0) as pool:
        s = pool.acquire()
        host = s.host
        result: list = []
        with host._ctl_lock:  # hold the connection: the reset passes its check, then waits here
            t = threading.Thread(target=lambda: result.append(host.reset()))
            t.start()
            time.sleep(0.2)
            host.close()
        t.join(10)
        assert result == [False]  # not reusable; no exception escaped the thread
        s.close()


def test_closing_a_trees_last_session_leaves_the_kill_to_the_reset():
    # The pool resets the released host (killing everything) off the caller's thread, so the
    # last close sends no kill of its own; a fork closed while its parent lives is killed at once.
    with SandboxPool("local", SandboxLimits(), warm=0) as pool:
        root = pool.acquire()
        host = root.host
        killed: list[int] = []
        real_kill = host.kill
        host.kill = lambda pid: (killed.append(pid), real_kill(pid))[1]
        child = root.fork()
        child_pid = child.pid
        child.close()
        assert killed == [child_pid]
        root.close()
        assert killed == [child_pid]
        again = pool.acquire()  # the same host, after its reset
        assert again.host is host and again.run("1").stdout == "1\n"
        again.close()
