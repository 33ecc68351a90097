"""A generic name -> object registry used for envs, advantage estimators, losses and agents.

Registering a name twice raises; an unknown name lists the options and the closest match.

>>> LOSSES: Registry[int] = Registry("loss")
>>> @LOSSES.register("one")
... def one() -> int:
...     return 1
>>> LOSSES.get("one")()
1
>>> "one" in LOSSES, sorted(LOSSES)
(True, ['one'])
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from branchgym.errors import ConfigError, UnknownName

T = TypeVar("T")

__all__ = ["Registry"]


class Registry(Generic[T]):
    """Maps names to objects of one kind; every entry of a registry shares one signature."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; usable as ``@REG.register("name")``."""
        if obj is not None:
            self._add(name, obj)
            return obj

        def deco(fn: T) -> T:
            self._add(name, fn)
            return fn

        return deco

    def _add(self, name: str, obj: T) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{self.kind} name must be a non-empty string, got {name!r}")
        if name in self._items:
            raise ConfigError(
                f"{self.kind} {name!r} is already registered ({self._items[name]!r}); "
                "pick another name or unregister the old one first."
            )
        self._items[name] = obj

    def unregister(self, name: str) -> None:
        """Remove ``name`` (for tests and plugins that replace an entry)."""
        self._items.pop(name, None)

    def get(self, name: str) -> T:
        """Return the entry for ``name`` or raise :class:`UnknownName` with suggestions.

        An entry registered as a ``"package.module:attr"`` string is imported on first use, so
        that a registry can list heavy entries without importing them.
        """
        try:
            obj = self._items[name]
        except KeyError:
            close = difflib.get_close_matches(str(name), list(self._items), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UnknownName(
                f"unknown {self.kind} {name!r}.{hint} Registered: {sorted(self._items)}."
            ) from None
        if isinstance(obj, str) and ":" in obj:
            module, _, attr = obj.partition(":")
            obj = getattr(importlib.import_module(module), attr)
            self._items[name] = obj
        return obj

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, T]]:
        """Entries sorted by name."""
        return sorted(self._items.items())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._items)})"
