"""The test tree itself: pytest imports a test file in a folder without ``__init__.py`` under
its bare file name, so two such files with one name break collection of the whole suite."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _import_name(path: Path) -> str:
    """The module name pytest's default (prepend) import mode gives ``path``."""
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").exists():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts)


def test_every_test_module_has_its_own_import_name() -> None:
    names: dict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("*.py"):
        if path.name != "conftest.py" and "__pycache__" not in path.parts:
            names[_import_name(path)].append(str(path.relative_to(TESTS)))
    clashes = {name: paths for name, paths in names.items() if len(paths) > 1}
    assert not clashes, f"rename one of each (pytest would import both as one module): {clashes}"


def test_the_check_sees_a_clash(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "test_cli.py").write_text("")
    (tmp_path / "b" / "__init__.py").write_text("")
    assert _import_name(tmp_path / "a" / "test_cli.py") == "test_cli"
    assert _import_name(tmp_path / "b" / "test_cli.py") == "b.test_cli"
