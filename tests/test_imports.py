"""`import branchgym` / `import gymnasium` stay light; ids register in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "docker", "transformers", "vllm")


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd="/"
    )


@pytest.mark.parametrize(
    "stmt",
    [
        "import branchgym",
        "import gymnasium",
        "import branchgym.envs, branchgym.agents, branchgym.sandbox, branchgym.algorithms",
        "import gymnasium as gym; gym.spec('WebSearch-Offline-v0')",
        "from branchgym.envs import ToolEnv, clone, check_env, make_vec, PROTOCOLS",
        "import branchgym.cli",
    ],
)
def test_no_heavy_imports(stmt: str) -> None:
    code = (
        f"{stmt}\nimport sys\nprint(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", f"{stmt!r} imported {proc.stdout.strip()}"


def test_gym_make_in_fresh_interpreter_without_importing_branchgym() -> None:
    code = (
        "import sys, gymnasium as gym\n"
        "assert 'branchgym.envs.core' not in sys.modules\n"
        "env = gym.make('WebSearch-Offline-v0')\n"
        "obs, info = env.reset(seed=0)\n"
        "print(type(env.unwrapped).__name__, len(obs) > 0, info['task']['id'])\n"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    name, nonempty, _ = proc.stdout.split()
    assert (name, nonempty) == ("ToolEnv", "True")


def test_startup_hook_is_silent_when_the_package_is_gone(tmp_path) -> None:
    """The ``.pth`` line runs in every interpreter; a removed or moved install must not print a
    traceback at each Python start (it did, before the ImportError guard)."""
    from pathlib import Path

    import branchgym

    line = (Path(branchgym.__file__).parent / "_gym_hook.pth").read_text()
    assert "branchgym._gym_hook" in line
    (tmp_path / "gone.pth").write_text(line.replace("branchgym._gym_hook", "branchgym_removed._gym_hook"))
    (tmp_path / "here.pth").write_text(line)
    proc = _run(f"import site, sys; site.addsitedir({str(tmp_path)!r}); print('branchgym._gym_hook' in sys.modules)")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.strip() == "True"


def test_every_envs_export_resolves_without_heavy_imports() -> None:
    code = (
        "import sys, branchgym.envs as E\n"
        "[getattr(E, n) for n in E.__all__]\n"
        "assert callable(E.clone) and callable(E.check_env) and callable(E.make_vec)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"
