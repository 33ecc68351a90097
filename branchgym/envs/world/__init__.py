"""The offline world: generator, websites and task families (README: Environments)."""

from branchgym._lazy import lazy_exports

_EXPORTS = {
    "World": "branchgym.envs.world.world",
    "GENERATOR_VERSION": "branchgym.envs.world.world",
    "OfflineTaskSource": "branchgym.envs.world.source",
    "FAMILIES": "branchgym.envs.world.source",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
