"""The image tag and builder (the build itself runs against the real engine)."""

from __future__ import annotations

import subprocess

import pytest

from branchgym.errors import ConfigError, SandboxError
from branchgym.sandbox import image


def test_tag_hashes_server_code_and_packages(monkeypatch):
    base = image.image_tag()
    assert base.startswith("branchgym-sandbox:") and len(base.split(":")[1]) == 12
    assert image.image_tag() == base
    assert image.image_tag(["python3-scipy"]) != base
    assert image.image_tag(["python3-numpy"]) == base  # already in the defaults
    files = image._server_files()
    assert set(files) == {"wire.py", "procs.py", "worker.py", "server.py"}
    changed = {**files, "worker.py": files["worker.py"] + b"\n# changed\n"}
    monkeypatch.setattr(image, "_server_files", lambda: changed)
    assert image.image_tag() != base


@pytest.mark.parametrize("bad", ["two words", "a,b", ""])
def test_bad_package_names_are_refused(bad):
    with pytest.raises(ConfigError, match="package name"):
        image.image_tag([bad])


@pytest.mark.docker
def test_built_image_runs_the_server_as_the_sandbox_user():
    tag = image.build_image(log=lambda line: None)  # a no-op when it exists
    assert image.image_exists(tag)
    out = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", tag, "python3", "-c",
         "import os, numpy, sympy; print(os.getuid(), os.path.exists('/opt/branchgym/server.py'),"
         " sympy.Integer(2) ** 10)"],
        capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["10001", "True", "1024"], out.stderr
    inspect = subprocess.run(["docker", "image", "inspect", "-f",
                              "{{.Config.User}} {{.Config.WorkingDir}} {{index .Config.Labels "
                              "\"branchgym.sandbox.tag\"}}", tag],
                             capture_output=True, text=True, timeout=30)
    assert inspect.stdout.split() == ["10001:10001", "/workspace", tag]


@pytest.mark.docker
def test_dockerfile_build_without_a_registry_says_what_to_do():
    with pytest.raises(SandboxError, match="without --from-dockerfile"):
        image.build_image(["python3-requests"], from_dockerfile=True, log=lambda line: None)


@pytest.mark.docker
def test_prune_removes_outdated_tags_but_keeps_the_current_one():
    tag = image.build_image(log=lambda line: None)
    old = f"{image.IMAGE_REPO}:outdated-test"
    subprocess.run(["docker", "tag", tag, old], check=True, timeout=60)
    removed = image.prune_images(keep=[tag])
    assert old in removed and tag not in removed
    assert image.image_exists(tag) and not image.image_exists(old)
