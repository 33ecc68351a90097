"""The benchmark table: where each benchmark lives, its env id, and how the env is set up.

Importing this module is cheap (no ``datasets``, no gymnasium env construction): the task-source
registry and ``register_envs`` read it at start-up. Loading happens in
:mod:`branchgym.envs.benchmarks.source`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["BenchmarkSpec", "SPECS", "spec", "register_sources", "register_benchmark_envs",
           "env_var_for", "not_loaded_reason"]


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark.

    Attributes:
        name: the ``TASK_SOURCES`` name (``"gaia"``).
        env_id: the Gymnasium id (docs/benchmarks.md#env-ids).
        hf_path, hf_config, hf_split: where ``datasets.load_dataset`` finds it on the hub.
        url: a plain file URL when there is no hub copy (BrowseComp's CSV).
        gated: the hub copy needs an ``HF_TOKEN`` and accepted terms.
        kind: ``"deep"`` (search + browse + python), ``"qa"`` (search + python) or ``"math"``.
        size: the evaluation-set size after filtering, as the papers report it (informative).
        notes: one line shown in errors and ``branchgym list``.
    """

    name: str
    env_id: str
    hf_path: str | None
    hf_config: str | None = None
    hf_split: str = "test"
    url: str | None = None
    gated: bool = False
    kind: str = "qa"
    size: int | None = None
    notes: str = ""
    env_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("deep", "qa", "math"):
            raise ValueError(f"benchmark {self.name!r}: kind {self.kind!r} is not deep/qa/math")
        if not (self.hf_path or self.url):
            raise ValueError(f"benchmark {self.name!r} needs hf_path or url")

    @property
    def hub_page(self) -> str:
        """Where a person accepts the terms / reads the card."""
        if self.hf_path:
            return f"https://huggingface.co/datasets/{self.hf_path}"
        return str(self.url)

    @property
    def factory_name(self) -> str:
        """The attribute of :mod:`~branchgym.envs.benchmarks.source` that builds this source."""
        return "load_" + self.name.replace("-", "_")


_FLASHRAG = "RUC-NLPIR/FlashRAG_datasets"
SPECS: tuple[BenchmarkSpec, ...] = (
    BenchmarkSpec("gaia", "WebSearch-GAIA-v0", "gaia-benchmark/GAIA", "2023_all", "validation",
                  gated=True, kind="deep", size=103,
                  notes="text-only validation subset (no attached file)"),
    BenchmarkSpec("hle", "WebSearch-HLE-v0", "cais/hle", None, "test", gated=True, kind="deep",
                  notes="text-only (no image); pick ARPO's subset with ids_file= or n=/seed="),
    BenchmarkSpec("webwalkerqa", "WebSearch-WebWalkerQA-v0", "callanwu/WebWalkerQA", None, "main",
                  kind="deep", size=680),
    BenchmarkSpec("xbench-deepsearch", "WebSearch-XBenchDeepSearch-v0", "xbench/DeepSearch", None,
                  "train", kind="deep", size=100, notes="encrypted; decrypted on load"),
    BenchmarkSpec("frames", "WebSearch-FRAMES-v0", "google/frames-benchmark", None, "test",
                  kind="deep", size=824),
    BenchmarkSpec("browsecomp", "WebSearch-BrowseComp-v0", None, url=(
        "https://openaipublic.blob.core.windows.net/simple-evals/browse_comp_test_set.csv"),
                  kind="deep", size=1266, notes="encrypted; decrypted on load"),
    BenchmarkSpec("simpleqa", "WebSearch-SimpleQA-v0", "basicv8vc/SimpleQA", None, "test",
                  size=4326),
    BenchmarkSpec("hotpotqa", "WebSearch-HotpotQA-v0", _FLASHRAG, "hotpotqa", "dev", size=7405),
    BenchmarkSpec("2wiki", "WebSearch-2Wiki-v0", _FLASHRAG, "2wikimultihopqa", "dev", size=12576),
    BenchmarkSpec("musique", "WebSearch-MuSiQue-v0", _FLASHRAG, "musique", "dev", size=2417),
    BenchmarkSpec("bamboogle", "WebSearch-Bamboogle-v0", _FLASHRAG, "bamboogle", "test",
                  size=125),
    BenchmarkSpec("aime24", "CodeExec-AIME24-v0", "HuggingFaceH4/aime_2024", None, "train",
                  kind="math", size=30),
    BenchmarkSpec("aime25", "CodeExec-AIME25-v0", "math-ai/aime25", None, "test", kind="math",
                  size=30),
    BenchmarkSpec("math500", "CodeExec-MATH500-v0", "HuggingFaceH4/MATH-500", None, "test",
                  kind="math", size=500),
    BenchmarkSpec("gsm8k", "CodeExec-GSM8K-v0", "openai/gsm8k", "main", "test", kind="math",
                  size=1319),
)
_BY_NAME = {s.name: s for s in SPECS}


def spec(name: str) -> BenchmarkSpec:
    """The spec of benchmark ``name``; unknown names list the known ones."""
    try:
        return _BY_NAME[name]
    except KeyError:
        from branchgym.errors import UnknownName

        raise UnknownName(f"unknown benchmark {name!r}; known: {sorted(_BY_NAME)}") from None


def env_var_for(name: str) -> str:
    """The env var that points a benchmark at a local file: ``BRANCHGYM_DATA_<NAME>``."""
    return "BRANCHGYM_DATA_" + name.upper().replace("-", "_")


def register_sources(registry: Any) -> None:
    """Add every benchmark to ``TASK_SOURCES`` (lazy ``module:attr`` entries)."""
    for s in SPECS:
        if s.name not in registry:
            registry.register(s.name, f"branchgym.envs.benchmarks.source:{s.factory_name}")


# Tool sets and limits per kind, as ARPO's evaluation runs them.
_KIND_KWARGS: dict[str, dict[str, Any]] = {
    "deep": {"tools": ("search", "browse", "python"), "search_backend": "web", "fetcher": "web",
             "reward": "f1", "max_turns": 24},
    "qa": {"tools": ("search", "python"), "search_backend": "web", "reward": "f1",
           "max_turns": 16},
    "math": {"tools": ("python",), "reward": "math_equal", "max_turns": 12},
}


def env_kwargs(s: BenchmarkSpec) -> dict[str, Any]:
    """The ``gym.register`` kwargs of a benchmark env."""
    return {"source": s.name, "split": "test", **_KIND_KWARGS[s.kind], **s.env_kwargs}


def register_benchmark_envs() -> None:
    """Register every benchmark env id with Gymnasium. Idempotent; imports nothing heavy.

    Each env gets :class:`~branchgym.envs.web.leak.LeakFlagWrapper` (``info["leak_flags"]``).
    """
    # gymnasium.envs.registration, not gymnasium: this runs while gymnasium is still importing.
    from gymnasium.envs.registration import WrapperSpec, register, registry

    leak = WrapperSpec("LeakFlagWrapper", "branchgym.envs.web.leak:LeakFlagWrapper",
                       {"min_answer_chars": 4})
    for s in SPECS:
        if s.env_id in registry:
            continue
        register(id=s.env_id, entry_point="branchgym.envs.core:ToolEnv",
                 kwargs=env_kwargs(s), additional_wrappers=(leak,))


def not_loaded_reason(source: Any) -> str | None:
    """Why ``branchgym list`` should not load ``source`` (a benchmark with no local copy, which
    would mean a hub download), or ``None`` when it may be built (offline sources, local files).
    """
    if not isinstance(source, str) or source not in _BY_NAME:
        return None
    from branchgym.envs.benchmarks.files import find_files

    try:
        if find_files(source, None, env_var_for(source)) is not None:
            return None
    except Exception:  # a broken path is reported when the env is built
        return None
    return f"not downloaded (set {env_var_for(source)} or see docs/benchmarks.md)"
