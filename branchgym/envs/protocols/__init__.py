"""Tool-call protocols: ``arpo`` (default), ``search-r1``, ``hermes``."""

from branchgym._lazy import lazy_exports

_EXPORTS = {
    "PROTOCOLS": "branchgym.envs.protocols.registry",
    "get_protocol": "branchgym.envs.protocols.registry",
    "Protocol": "branchgym.envs.protocols.base",
    "ParsedAction": "branchgym.envs.protocols.base",
    "ArpoProtocol": "branchgym.envs.protocols.arpo",
    "SearchR1Protocol": "branchgym.envs.protocols.search_r1",
    "HermesProtocol": "branchgym.envs.protocols.hermes",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
