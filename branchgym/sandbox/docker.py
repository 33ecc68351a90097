"""The Docker backend: one hardened container per host, its server as PID 1.

Transport: the host listens on a Unix socket in a per-container directory that is bind-mounted
at ``/run/branchgym``; the server connects once at start, then the listener is closed and the
socket file removed (nothing is left for user code to reach). Worker connections are socket
pairs passed over that control connection (``SCM_RIGHTS``), so no call goes through
``docker exec``.

Hardening: ``--network none``, read-only root, size-capped tmpfs at ``/workspace`` and ``/tmp``
(noexec, nosuid), memory = memory+swap limit, CPU quota, pids limit, all capabilities dropped,
``no-new-privileges``, non-root user (uid 10001). The server is PID 1 and ignores every signal
it can, so code inside cannot kill it with signals; it is non-dumpable, so code cannot trace it
or touch its memory. A reused container is reset: every process killed, ``/workspace``,
``/tmp``, ``/dev/shm``, ``/dev/mqueue`` and System V IPC wiped (see ``server.py``).

Orphans: every container carries ``branchgym.sandbox=1`` and its owner (hostname, pid, process
start time). A container's server exits (and the container stops) when its owner's control
socket closes; :func:`reap_orphans` (run when a pool starts, and by ``branchgym sandbox gc``)
removes the containers of owners that no longer exist.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from branchgym.errors import SandboxError
from branchgym.sandbox.host import ServerHost
from branchgym.sandbox.image import SANDBOX_UID, build_image, image_exists, image_tag
from branchgym.sandbox.limits import SandboxLimits

__all__ = ["DockerHost", "reap_orphans", "docker_ready", "owner_label", "LABEL"]

LABEL = "branchgym.sandbox"
RUN_DIR = Path(os.environ.get("BRANCHGYM_SANDBOX_RUN_DIR", "/tmp/branchgym-docker"))
_CLIENT: Any = None
_CLIENT_LOCK = threading.Lock()
_IMAGE_LOCK = threading.Lock()
_CHECKED_IMAGES: set[str] = set()


def _client() -> Any:
    global _CLIENT
    with _CLIENT_LOCK:
        if _CLIENT is None:
            try:
                import docker
            except ImportError:
                raise SandboxError("the Docker backend needs the docker SDK: "
                                   "`pip install 'branchgym[docker]'`") from None
            try:
                _CLIENT = docker.from_env(timeout=60)
                _CLIENT.ping()
            except Exception as e:
                _CLIENT = None
                raise SandboxError(f"no Docker engine answers ({e}); start dockerd or use "
                                   f"backend='local'") from None
        return _CLIENT


def docker_ready(image: str | None = None) -> tuple[bool, str]:
    """``(True, "")`` when an engine answers and the image exists, else ``(False, why)``."""
    try:
        _client()
    except SandboxError as e:
        return False, str(e).split(";")[0]
    tag = image or image_tag()
    if not image_exists(tag):
        return False, f"the image {tag} is not built (run `branchgym sandbox build-image`)"
    return True, ""


def _proc_start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return stat[stat.rindex(b")") + 2:].split()[19].decode()
    except (OSError, ValueError, IndexError):
        return None


def owner_label() -> str:
    """``hostname:pid:start_time`` of this process; pid reuse cannot fake liveness."""
    return f"{socket.gethostname()}:{os.getpid()}:{_proc_start_time(os.getpid())}"


def _owner_alive(owner: str) -> bool:
    try:
        host, pid, start = owner.rsplit(":", 2)
    except ValueError:
        return False
    if host != socket.gethostname():
        return True  # another machine's container: not ours to judge
    return _proc_start_time(int(pid)) == start


def reap_orphans() -> list[str]:
    """Remove sandbox containers (and run dirs) whose owner process is gone; returns their ids."""
    client = _client()
    removed = []
    for c in client.containers.list(all=True, filters={"label": f"{LABEL}=1"}):
        owner = c.labels.get(f"{LABEL}.owner", "")
        if _owner_alive(owner):
            continue
        try:
            c.remove(force=True)
            removed.append(c.id)
        except Exception:  # already gone
            pass
    if RUN_DIR.is_dir():
        for d in RUN_DIR.iterdir():
            pid_start = d.name.split("-", 1)[0].replace("_", ":")
            if not _owner_alive(f"{socket.gethostname()}:{pid_start}"):
                shutil.rmtree(d, ignore_errors=True)
    return removed


def _ensure_image(image: str | None) -> str:
    tag = image or image_tag()
    with _IMAGE_LOCK:
        if tag in _CHECKED_IMAGES:
            return tag
        if not image_exists(tag):
            if image is not None:
                raise SandboxError(f"docker image {image!r} does not exist: build it, or leave "
                                   f"image=None to use `branchgym sandbox build-image`'s tag")
            print(f"branchgym: building the sandbox image {tag} (first use only; "
                  f"`branchgym sandbox build-image` does it ahead of time)...", file=sys.stderr)
            build_image(log=lambda line: None)
        _CHECKED_IMAGES.add(tag)
    return tag


class DockerHost(ServerHost):
    """One sandbox container, its server connected over a bind-mounted Unix socket."""

    backend = "docker"

    def __init__(self, limits: SandboxLimits, image: str) -> None:
        super().__init__(limits)
        self.image = image
        self.container: Any = None
        owner = owner_label()
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        os.chmod(RUN_DIR, 0o755)
        _host, pid, start = owner.rsplit(":", 2)
        self.run_dir = RUN_DIR / f"{pid}_{start}-{secrets.token_hex(6)}"
        self.run_dir.mkdir(mode=0o755)
        self.owner = owner
        self.started_at = time.time()

    @classmethod
    def start(cls, limits: SandboxLimits, image: str | None = None,
              timeout_s: float = 60.0) -> DockerHost:
        host = cls(limits, _ensure_image(image))
        try:
            host._launch(timeout_s)
        except BaseException:
            host.close()
            raise
        return host

    def run_kwargs(self) -> dict[str, Any]:
        lim = self.limits
        command = ["python3", "-I", "/opt/branchgym/server.py", "--connect",
                   "/run/branchgym/ctl.sock", "--workspace-root", "/workspace",
                   "--limits", json.dumps(lim.worker_limits(nproc=False))]
        return dict(
            image=self.image,
            command=command,
            name=f"branchgym-sandbox-{self.run_dir.name[-12:]}-{os.getpid()}",
            detach=True,
            network_mode="none",
            read_only=True,
            tmpfs={"/workspace": f"rw,noexec,nosuid,nodev,size={lim.workspace_mb}m,mode=1777",
                   "/tmp": "rw,noexec,nosuid,nodev,size=64m,mode=1777"},
            mem_limit=f"{lim.memory_mb}m",
            memswap_limit=f"{lim.memory_mb}m",
            nano_cpus=int(lim.cpus * 1e9),
            pids_limit=lim.pids,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            user=f"{SANDBOX_UID}:{SANDBOX_UID}",
            volumes={str(self.run_dir): {"bind": "/run/branchgym", "mode": "rw"}},
            labels={LABEL: "1", f"{LABEL}.owner": self.owner,
                    f"{LABEL}.owner_pid": str(os.getpid()),
                    f"{LABEL}.started": f"{self.started_at:.3f}"},
            environment={"PYTHONDONTWRITEBYTECODE": "1", "HOME": "/workspace",
                         **lim.server_env()},
        )

    def _launch(self, timeout_s: float) -> None:
        path = self.run_dir / "ctl.sock"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(path))
            os.chmod(path, 0o666)  # the sandbox user connects; the directory stays root's
            listener.listen(1)
            try:
                kwargs = self.run_kwargs()
                kwargs.pop("detach")
                self.container = _client().containers.create(**kwargs)
                self.container.start()
            except Exception as e:
                raise SandboxError(f"docker could not start a sandbox container from "
                                   f"{self.image}: {e}") from None
            listener.settimeout(timeout_s)
            try:
                ctl, _ = listener.accept()
            except TimeoutError:
                raise SandboxError(f"the sandbox container {self.container.short_id} did not "
                                   f"connect within {timeout_s:g} s; "
                                   f"{self.describe_failure()}") from None
        finally:
            listener.close()
            try:
                path.unlink()
            except OSError:
                pass
        self._attach(ctl, timeout_s)
        self.name = f"docker-{self.container.short_id}"

    def scratch(self) -> tuple[tuple[str, ...], bool]:
        """The container's writable places besides ``/workspace``, and its own IPC namespace."""
        return ("/tmp", "/dev/shm", "/dev/mqueue"), True

    def describe_failure(self) -> str:
        if self.container is None:
            return "no container"
        try:
            logs = self.container.logs(tail=30).decode("utf-8", "replace").strip()
        except Exception as e:
            logs = f"(no logs: {e})"
        return f"container logs: {logs or '(empty)'}"

    @property
    def container_id(self) -> str | None:
        return None if self.container is None else self.container.id

    def _terminate(self) -> None:
        container, self.container = self.container, None
        if container is not None:
            try:
                container.remove(force=True)
            except Exception:  # already removed (e.g. by `sandbox gc`)
                pass
        shutil.rmtree(self.run_dir, ignore_errors=True)
