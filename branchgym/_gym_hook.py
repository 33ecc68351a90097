"""Register branchgym's env ids whenever ``gymnasium.envs`` (or GEM's / SkyRL-gym's registry) is imported.

Gymnasium >= 1.0 no longer loads plugins from the ``gymnasium.envs`` entry-point group, so
``gym.make("WebSearch-Offline-v0")`` in a fresh interpreter would not find our ids. The wheel
ships ``branchgym-gymnasium.pth``, which imports this module at interpreter start-up. It costs a
few microseconds: it only installs a meta-path finder that waits for ``gymnasium.envs`` and then
calls :func:`branchgym.envs.registration.register_envs` (string entry points; nothing heavy is
imported). GEM and SkyRL-gym have no plugin mechanism at all, so the same finder waits for
``gem.envs`` and ``skyrl_gym.envs`` and registers the adapters' ids there
(docs/integrations/gem.md, skyrl.md). Set ``BRANCHGYM_NO_GYM_HOOK=1`` to disable it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import sys

# module -> (module, function) that registers branchgym's ids once that module has loaded
_TARGETS = {
    "gymnasium.envs": ("branchgym.envs.registration", "register_envs"),
    "gem.envs": ("branchgym.integrations.gem", "register_gem_envs"),
    "skyrl_gym.envs": ("branchgym.integrations.skyrl", "register_skyrl_envs"),
}


def _register(target: str) -> None:
    """Run the target's registration; never break the third-party import for a plugin problem."""
    module, fn = _TARGETS[target]
    try:
        getattr(importlib.import_module(module), fn)()
    except Exception as exc:
        import warnings

        warnings.warn(f"branchgym could not register its environments with {target}: {exc!r}", stacklevel=2)


class _RegisterAfterLoad(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader, target: str) -> None:
        self._inner = inner
        self._target = target

    def create_module(self, spec):  # noqa: D102 - delegate
        return self._inner.create_module(spec)

    def exec_module(self, module) -> None:  # noqa: D102
        self._inner.exec_module(module)
        _register(self._target)


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, waiting: set[str]) -> None:
        self.waiting = waiting

    def find_spec(self, fullname, path, target=None):  # noqa: D102
        if fullname not in self.waiting:
            return None
        self.waiting.discard(fullname)  # one shot per target; also avoids recursion below
        if not self.waiting:
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisterAfterLoad(spec.loader, fullname)
        return spec


def install() -> None:
    """Install the hook; a target already loaded is registered directly."""
    if os.environ.get("BRANCHGYM_NO_GYM_HOOK") or any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    waiting = set()
    for target in _TARGETS:
        if target in sys.modules:
            _register(target)
        else:
            waiting.add(target)
    if waiting:
        sys.meta_path.insert(0, _Finder(waiting))


install()
