"""``branchgym serve --build-image``: the server's container image, built offline.

Base: the sandbox image (``branchgym sandbox build-image``: debootstrap Debian + python3 3.11),
which exists locally, so nothing is pulled. On top: the installed distributions this server
needs, copied from this machine's site-packages (the requirement closure of ``branchgym``,
``openenv`` and ``docker``) into the image's ``/usr/local/lib/python3.11/dist-packages`` (ahead
of Debian's own packages on ``sys.path``), branchgym's source tree, and the host's static
``docker`` CLI. Host and image share CPython 3.11's ABI, so compiled wheels run in both. The
tag hashes the base tag, every copied distribution's name and version and branchgym's source.

The python tool reaches its sandboxes through the host's Docker socket (sibling containers with
the usual limits); see ``docs/integrations/openenv.md`` for ``docker run`` and why.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from branchgym.errors import ConfigError, SandboxError

__all__ = ["IMAGE_REPO", "ROOTS", "server_image_tag", "build_server_image", "requirement_closure"]

IMAGE_REPO = "branchgym-serve"
ROOTS = ("branchgym", "openenv", "docker")
RECIPE_VERSION = "1"
SITE = "/usr/local/lib/python3.11/dist-packages"

_DOCKERFILE = f"""\
FROM {{base}}
USER root
COPY site/ {SITE}/
COPY docker /usr/local/bin/docker
ENV PYTHONDONTWRITEBYTECODE=1 BRANCHGYM_SANDBOX_BACKEND=docker
EXPOSE 8000
ENTRYPOINT ["python3", "-m", "branchgym.cli", "serve", "--host", "0.0.0.0"]
CMD ["--help"]
"""


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_closure(roots: Iterable[str] = ROOTS) -> dict[str, md.Distribution]:
    """Every installed distribution ``roots`` need, by normalised name, following the extras
    that requirements ask for (``fastmcp-slim[client]``) but not the roots' optional ones."""
    from packaging.requirements import Requirement

    roots = tuple(roots)
    seen: dict[str, md.Distribution] = {}
    done: set[tuple[str, str]] = set()
    stack: list[tuple[str, str]] = [(name, "") for name in roots]
    while stack:
        name, extra = stack.pop()
        if (_key(name), extra) in done:
            continue
        done.add((_key(name), extra))
        try:
            dist = seen.get(_key(name)) or md.distribution(name)
        except md.PackageNotFoundError:
            if name in roots:
                raise ConfigError(f"{name} is not installed here; the server image is built "
                                  "from installed packages: pip install 'branchgym[openenv]' "
                                  "'branchgym[docker]' first") from None
            continue  # an optional dependency this machine does not have
        seen[_key(name)] = dist
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": extra}):
                stack.append((req.name, ""))
                stack.extend((req.name, e) for e in req.extras)
    return seen


def _branchgym_dir() -> Path:
    import branchgym

    return Path(branchgym.__file__).parent


def _source_files() -> list[Path]:
    root = _branchgym_dir()
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                  and p.suffix != ".pyc")


def server_image_tag() -> str:
    """``branchgym-serve:<hash12>`` of the base tag, the packages and branchgym's source."""
    from branchgym.sandbox.image import image_tag

    h = hashlib.sha256(f"{RECIPE_VERSION}\0{image_tag()}\0".encode())
    for key, dist in sorted(requirement_closure().items()):
        h.update(f"{key}=={dist.version}\0".encode())
    root = _branchgym_dir()
    for path in _source_files():
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return f"{IMAGE_REPO}:{h.hexdigest()[:12]}"


def _stage(site: Path) -> int:
    """Copy the closure's files into ``site``; the number of files copied."""
    count = 0
    for key, dist in requirement_closure().items():
        base = Path(str(dist.locate_file(""))).resolve()
        if key == "branchgym":  # an editable install: its files are the source tree
            src = _branchgym_dir()
            shutil.copytree(src, site / "branchgym",
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            info = Path(str(dist._path))  # type: ignore[attr-defined]
            shutil.copytree(info, site / info.name)
            for rel in dist.files or []:  # the gymnasium hook's .pth, not the editable finder's
                if rel.suffix == ".pth" and "/" not in str(rel) and "editable" not in rel.name:
                    shutil.copy2(Path(str(dist.locate_file(rel))), site / rel.name)
            count += len(_source_files())
            continue
        for rel in dist.files or []:
            src = Path(str(dist.locate_file(rel))).resolve()
            if base not in src.parents or "__pycache__" in src.parts or not src.is_file():
                continue  # scripts outside site-packages, bytecode
            dest = site / src.relative_to(base)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
            count += 1
    return count


def _run(cmd: list[str], what: str, log: Callable[[str], None], timeout: float = 1800) -> str:
    log("$ " + " ".join(cmd))
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise SandboxError(f"{what} failed (exit {r.returncode}): "
                           f"{(r.stderr or r.stdout).strip()[-3000:]}")
    return r.stdout


def build_server_image(force: bool = False, log: Callable[[str], None] = print) -> str:
    """Build (or reuse) the server image; returns its tag. Offline: no pull, no download."""
    from branchgym.sandbox.image import build_image, image_exists, image_tag

    tag = server_image_tag()
    if image_exists(tag) and not force:
        log(f"{tag} exists (use --force to rebuild)")
        return tag
    docker = shutil.which("docker")
    if docker is None:
        raise SandboxError("the docker CLI is not on PATH; install Docker to build the image")
    base = image_tag()
    if not image_exists(base):
        log(f"building the sandbox image {base} first (the server image's base)")
        build_image(log=log)
    with tempfile.TemporaryDirectory(prefix="branchgym-serve-image-") as tmp:
        ctx = Path(tmp)
        n = _stage(ctx / "site")
        shutil.copy2(docker, ctx / "docker")
        (ctx / "Dockerfile").write_text(_DOCKERFILE.format(base=base))
        log(f"staged {n} files from site-packages; docker build on {base}")
        _run(["docker", "build", "-q", "-t", tag, str(ctx)], "docker build", log)
    # the image must import the server and answer --help before it counts as built
    try:
        _run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "python3", tag, "-c",
              "import gymnasium as gym, branchgym.integrations.openenv.server as s; "
              "gym.make('WebSearch-Offline-v0').close(); print('ok')"], "image check", log, 300)
        _run(["docker", "run", "--rm", "--network", "none", tag, "--help"], "image check", log, 300)
    except SandboxError:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=120)
        raise
    log(f"built {tag}")
    _remove_older(tag, log)
    return tag


def _remove_older(keep: str, log: Callable[[str], None]) -> None:
    """Remove other ``branchgym-serve:*`` tags (every source change makes a new ~650 MB image);
    Docker refuses to remove one a container still uses, so a running server is safe."""
    out = subprocess.run(["docker", "images", IMAGE_REPO, "--format", "{{.Repository}}:{{.Tag}}"],
                         capture_output=True, text=True, timeout=60).stdout
    for old in out.split():
        if old != keep and not old.endswith(":<none>"):
            r = subprocess.run(["docker", "rmi", old], capture_output=True, timeout=120)
            if r.returncode == 0:
                log(f"removed the older {old}")
