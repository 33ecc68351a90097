"""Name -> factory registries the env resolves its string options through.

Each registry has one factory signature:

- ``TASK_SOURCES[name](**kwargs) -> TaskSource``: offline families and benchmark loaders.
- ``SEARCH_BACKENDS[name](source: TaskSource, **kwargs) -> SearchBackend``: the offline BM25
  index is built from the source's world; web backends ignore ``source``.
- ``FETCHERS[name](source: TaskSource, **kwargs) -> PageFetcher``: the offline world's in-memory
  sites, or the real web.
- ``TOOLS[name].build(context: ToolContext, **kwargs) -> Tool``: the tools an env enables
  (defined in :mod:`branchgym.envs.tools.registry`, re-exported here; docs/tools.md).

Entries are ``"module:attr"`` strings, imported on first use, so that importing this module (and
``gymnasium``) stays cheap. Subsystems add their own lines here.
"""

from __future__ import annotations

from typing import Any, Callable

from branchgym.registry import Registry

from branchgym.envs.tools.registry import TOOLS

__all__ = ["TASK_SOURCES", "SEARCH_BACKENDS", "FETCHERS", "TOOLS"]

TASK_SOURCES: Registry[Callable[..., Any]] = Registry("task source")
SEARCH_BACKENDS: Registry[Callable[..., Any]] = Registry("search backend")
FETCHERS: Registry[Callable[..., Any]] = Registry("page fetcher")

# Offline world (environment-core issue) — entries added by branchgym.envs.world.
TASK_SOURCES.register("offline-websearch", "branchgym.envs.world.source:websearch_source")
TASK_SOURCES.register("offline-browse", "branchgym.envs.world.source:browse_source")
TASK_SOURCES.register("offline-codeexec", "branchgym.envs.world.source:codeexec_source")
TASK_SOURCES.register("offline-deepresearch", "branchgym.envs.world.source:deepresearch_source")
SEARCH_BACKENDS.register("bm25", "branchgym.envs.tools.search:bm25_backend")
FETCHERS.register("world", "branchgym.envs.tools.browse:world_fetcher")
# Real benchmarks and the web (benchmarks issue) — entries added by branchgym.envs.benchmarks / .web.
_WEB = "branchgym.envs.web.factories"
for _name in ("serper", "brave", "searxng", "bing", "retriever"):
    SEARCH_BACKENDS.register(_name, f"{_WEB}:{_name}")
SEARCH_BACKENDS.register("replay", f"{_WEB}:replay_search")
SEARCH_BACKENDS.register("web", f"{_WEB}:auto_search")
FETCHERS.register("web", f"{_WEB}:web_fetcher")
FETCHERS.register("replay", f"{_WEB}:replay_fetcher")
from branchgym.envs.benchmarks.table import register_sources as _register_benchmarks  # noqa: E402

_register_benchmarks(TASK_SOURCES)
