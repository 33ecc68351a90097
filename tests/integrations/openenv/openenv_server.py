"""Start a real ``branchgym serve`` process on 127.0.0.1 (a free port) and read its stats.

The server runs in a subprocess of this interpreter (the openenv venv), so killing a client,
SIGTERM and the server's own sandbox pool are all real.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    proc: subprocess.Popen[str]
    port: int
    log_path: str

    def output(self) -> str:
        """What the server printed (its log file)."""
        with open(self.log_path) as f:
            return f.read()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return json.loads(r.read())

    def stats(self) -> dict[str, Any]:
        return self.get("/branchgym/stats")

    def wait_stats(self, pred: Any, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            s = self.stats()
            if pred(s) or time.monotonic() > deadline:
                return s
            time.sleep(0.2)

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


def start_server(env_id: str, *env_kwargs: str, max_sessions: int = 24,
                 extra: tuple[str, ...] = ()) -> Server:
    port = free_port()
    cmd = [sys.executable, "-m", "branchgym.cli", "serve", env_id, "--port", str(port),
           "--max-sessions", str(max_sessions), *extra, *env_kwargs]
    log = tempfile.NamedTemporaryFile("w+", prefix="branchgym-serve-", suffix=".log", delete=False)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    server = Server(proc, port, log.name)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"branchgym serve exited ({proc.returncode}): {server.output()}")
        try:
            if server.get("/health")["status"] == "healthy":
                return server
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("branchgym serve did not answer /health within 180 s")
