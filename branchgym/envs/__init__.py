"""Gymnasium environments for tool-using LLM agents (README: Environments)."""

from branchgym._lazy import lazy_exports

_EXPORTS = {
    "Task": "branchgym.envs.types",
    "GoldStep": "branchgym.envs.types",
    "TaskSource": "branchgym.envs.types",
    "Hit": "branchgym.envs.types",
    "Page": "branchgym.envs.types",
    "Tool": "branchgym.envs.tools.base",
    "ToolOutput": "branchgym.envs.tools.base",
    "ToolContext": "branchgym.envs.tools.base",
    "Probe": "branchgym.envs.tools.base",
    "TOOLS": "branchgym.envs.tools.registry",
    "register_envs": "branchgym.envs.registration",
    "ToolEnv": "branchgym.envs.core",
    "UnicodeText": "branchgym.envs.spaces",
    "clone": "branchgym.envs.clone",
    "check_env": "branchgym.envs.checker",
    "make_vec": "branchgym.envs.vector",
    "PROTOCOLS": "branchgym.envs.protocols.registry",
    "ListSource": "branchgym.envs.tasks",
    "PythonTool": "branchgym.envs.tools.python",
    "Protocol": "branchgym.envs.protocols.base",
    "ParsedAction": "branchgym.envs.protocols.base",
    "get_protocol": "branchgym.envs.protocols.registry",
    "run_episode": "branchgym.envs.evaluate",
    "EvalReport": "branchgym.envs.evaluate",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
