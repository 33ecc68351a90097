"""Code execution sandboxes: ``open_sandbox(backend="docker"|"local"|"auto") -> Session``.

See the README's Sandbox section. Heavy modules (docker SDK) load only when a Docker sandbox is used.
"""

from branchgym._lazy import lazy_exports

_EXPORTS = {
    "ExecResult": "branchgym.sandbox.core",
    "Session": "branchgym.sandbox.core",
    "open_sandbox": "branchgym.sandbox.factory",
    "default_pool": "branchgym.sandbox.factory",
    "resolve_backend": "branchgym.sandbox.factory",
    "SandboxLimits": "branchgym.sandbox.limits",
    "SandboxPool": "branchgym.sandbox.pool",
    "WorkerSession": "branchgym.sandbox.session",
    "LocalSandboxWarning": "branchgym.sandbox.local",
    "reap_orphans": "branchgym.sandbox.docker",
    "build_image": "branchgym.sandbox.image",
    "image_tag": "branchgym.sandbox.image",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
