"""Leak guard: keep benchmark answers from reaching the agent through the web.

Two parts, both on by default for the real-web backends and the benchmark envs:

1. **Blocklist** — search hits whose URL is a benchmark mirror are dropped, and browsing such a
   URL is refused: dataset hubs (``huggingface.co/datasets``, its mirrors, Kaggle/ModelScope
   datasets), the benchmarks' own repositories on GitHub, and known answer sites (AIME solution
   wikis, the GAIA leaderboard). :data:`DEFAULT_BLOCKLIST` is the list; pass ``extra=`` or your
   own ``rules=``.
2. **Gold-answer flags** — a search result or page whose text contains a gold answer is
   *flagged*, not hidden (the page may legitimately hold the fact): :func:`leak_flags` finds
   them, and :class:`LeakFlagWrapper` puts them in ``info["leak_flags"]`` after each step.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import gymnasium as gym

from branchgym.envs.types import Hit, Page, PageFetcher, SearchBackend
from branchgym.errors import ConfigError, FetchError

__all__ = [
    "DEFAULT_BLOCKLIST",
    "LeakGuard",
    "LeakBlocked",
    "GuardedSearch",
    "GuardedFetcher",
    "leak_flags",
    "LeakFlagWrapper",
]

# (host suffix, path prefix) pairs; a URL matches when its host is the suffix or a subdomain of
# it and its path starts with the prefix (case-insensitive).
DEFAULT_BLOCKLIST: tuple[tuple[str, str], ...] = (
    ("huggingface.co", "/datasets"),
    ("hf.co", "/datasets"),
    ("hf-mirror.com", "/datasets"),
    ("huggingface.co", "/spaces/gaia-benchmark"),
    ("datasets-server.huggingface.co", "/"),
    ("kaggle.com", "/datasets"),
    ("modelscope.cn", "/datasets"),
    ("paperswithcode.com", "/dataset"),
    ("github.com", "/dongguanting/arpo"),
    ("github.com", "/ruc-nlpir/arpo"),
    ("github.com", "/ruc-nlpir/webthinker"),
    ("github.com", "/ruc-nlpir/flashrag"),
    ("github.com", "/openai/simple-evals"),
    ("github.com", "/openai/grade-school-math"),
    ("github.com", "/xbench-ai/xbench-evals"),
    ("github.com", "/centerforaisafety/hle"),
    ("github.com", "/alibaba-nlp/webwalker"),
    ("github.com", "/hotpotqa/hotpot"),
    ("github.com", "/alab-nii/2wikimultihop"),
    ("github.com", "/stonybrooknlp/musique"),
    ("github.com", "/ofirpress/self-ask"),
    ("github.com", "/hendrycks/math"),
    ("github.com", "/petergriffinjin/search-r1"),
    ("raw.githubusercontent.com", "/dongguanting/arpo"),
    ("raw.githubusercontent.com", "/ruc-nlpir/"),
    ("raw.githubusercontent.com", "/openai/simple-evals"),
    ("raw.githubusercontent.com", "/xbench-ai/"),
    ("openaipublic.blob.core.windows.net", "/simple-evals"),
    ("artofproblemsolving.com", "/wiki/index.php/2024_aime"),
    ("artofproblemsolving.com", "/wiki/index.php/2025_aime"),
    ("lastexam.ai", "/"),
)


class LeakBlocked(FetchError):
    """The URL is on the leak-guard blocklist (a benchmark mirror or answer site)."""


@dataclass(frozen=True)
class LeakGuard:
    """The blocklist and the answer-flag rule.

    Args:
        enabled: ``False`` turns the blocklist off (flags still work if asked for).
        rules: ``(host suffix, path prefix)`` pairs; default :data:`DEFAULT_BLOCKLIST`.
        extra: more pairs (or bare host names) added to ``rules``.
        min_answer_chars: answers shorter than this (after normalisation) are never flagged —
            "3" or "no" occur on almost every page.
    """

    enabled: bool = True
    rules: tuple[tuple[str, str], ...] = DEFAULT_BLOCKLIST
    extra: tuple[Any, ...] = ()
    min_answer_chars: int = 4

    def __post_init__(self) -> None:
        rules = list(self.rules)
        for item in self.extra:
            if isinstance(item, str):
                rules.append((item, "/"))
            elif isinstance(item, (tuple, list)) and len(item) == 2:
                rules.append((str(item[0]), str(item[1])))
            else:
                raise ConfigError(
                    f"leak-guard extra entry {item!r} must be a host name or a "
                    "(host, path prefix) pair, e.g. ('github.com', '/org/repo')"
                )
        norm = tuple((h.lower().lstrip("."), p.lower() or "/") for h, p in rules)
        object.__setattr__(self, "rules", norm)
        object.__setattr__(self, "extra", ())
        if self.min_answer_chars < 1:
            raise ConfigError(f"min_answer_chars must be >= 1, got {self.min_answer_chars}")

    def blocked(self, url: str) -> str | None:
        """The rule a URL matches (``"host/path"``), or ``None`` when it may be used.

        A URL whose host cannot be parsed matches ``"malformed URL"``: the guard cannot tell
        where it leads, so such a hit is dropped rather than shown.
        """
        if not self.enabled:
            return None
        try:
            parts = urlsplit(str(url).strip())
            host = (parts.hostname or "").lower().rstrip(".")
        except ValueError:  # e.g. "http://[::1/" from a search API: no host to judge
            return "malformed URL"
        if host.startswith("www."):
            host = host[4:]
        path = (parts.path or "/").lower()
        for suffix, prefix in self.rules:
            if (host == suffix or host.endswith("." + suffix)) and path.startswith(prefix):
                return suffix + prefix
        return None


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def leak_flags(text: str, answers: Sequence[str], *, min_answer_chars: int = 4) -> list[str]:
    """The gold answers that ``text`` contains as whole words (after normalisation).

    >>> leak_flags("It was founded in 1887 by Ada.", ["1887", "Ada Lovelace"])
    ['1887']
    """
    if not text:
        return []
    hay = f" {_norm(text)} "
    found = []
    for answer in answers:
        needle = _norm(str(answer))
        if len(needle) >= min_answer_chars and f" {needle} " in hay and answer not in found:
            found.append(answer)
    return found


class GuardedSearch:
    """A ``SearchBackend`` that drops hits on the blocklist.

    It asks the backend for ``overfetch`` extra hits to make up for dropped ones (0 for a
    recorded store, whose keys carry the ``k`` the agent asked for).
    """

    def __init__(self, backend: SearchBackend, guard: LeakGuard | None = None, *,
                 overfetch: int = 5) -> None:
        if overfetch < 0:
            raise ConfigError(f"overfetch must be >= 0, got {overfetch}")
        self.backend, self.guard, self.overfetch = backend, guard or LeakGuard(), overfetch
        self.dropped: list[str] = []  # URLs dropped so far (for stats and tests)

    def search(self, query: str, k: int = 10) -> list[Hit]:
        hits = self.backend.search(query, k + self.overfetch if self.guard.enabled else k)
        kept = []
        for hit in hits:
            if self.guard.blocked(hit.url):
                self.dropped.append(hit.url)
            else:
                kept.append(hit)
        return kept[:k]

    def close(self) -> None:
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()


class GuardedFetcher:
    """A ``PageFetcher`` that refuses blocklisted URLs: asked for, passed through by a redirect
    (when the fetcher exposes ``url_checks``, as :class:`~branchgym.envs.web.fetcher.WebFetcher`
    does), or landed on."""

    def __init__(self, fetcher: PageFetcher, guard: LeakGuard | None = None) -> None:
        self.fetcher, self.guard = fetcher, guard or LeakGuard()
        hops = getattr(fetcher, "url_checks", None)
        if isinstance(hops, list):
            hops.append(self._check_hop)

    def _check_hop(self, url: str) -> None:
        rule = self.guard.blocked(url)
        if rule:
            raise LeakBlocked(f"a redirect passed through {url!r}, a blocked benchmark mirror ({rule})")

    def fetch(self, url: str) -> Page:
        rule = self.guard.blocked(url)
        if rule:
            raise LeakBlocked(
                f"{url!r} is a benchmark mirror or answer site ({rule}) and is blocked by "
                "the leak guard; browse another source"
            )
        page = self.fetcher.fetch(url)
        rule = self.guard.blocked(page.url)
        if rule:
            raise LeakBlocked(f"{url!r} redirected to a blocked benchmark mirror ({rule})")
        return page

    def close(self) -> None:
        close = getattr(self.fetcher, "close", None)
        if close is not None:
            close()


def _answers_of(info: dict[str, Any]) -> list[str]:
    task = info.get("task") or {}
    return [str(a) for a in (task.get("answers") or ())]


class LeakFlagWrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Adds ``info["leak_flags"]``: the gold answers found in this step's tool observation.

    Only tool results are checked (the step's ``obs``), never the final answer. The running
    list for the episode is ``info["leak_flags_episode"]``.
    """

    def __init__(self, env: gym.Env, *, min_answer_chars: int = 4) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, min_answer_chars=min_answer_chars)
        gym.Wrapper.__init__(self, env)
        self.min_answer_chars = min_answer_chars
        # Tuples, so that a shallow copy of this wrapper (env cloning) shares nothing mutable.
        self._answers: tuple[str, ...] = ()
        self._episode: tuple[dict[str, Any], ...] = ()
        self._turn = 0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._answers = tuple(_answers_of(info))
        self._episode = ()
        self._turn = 0
        return obs, info

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        found = leak_flags(obs if isinstance(obs, str) else "", self._answers,
                           min_answer_chars=self.min_answer_chars)
        info = dict(info)
        info["leak_flags"] = found
        if found:
            self._episode = (*self._episode, {"turn": self._turn, "answers": found})
        self._turn += 1
        info["leak_flags_episode"] = list(self._episode)
        return obs, reward, terminated, truncated, info


def blocked_any(guard: LeakGuard, urls: Iterable[str]) -> list[str]:
    """The URLs of ``urls`` on the blocklist (helper for reports)."""
    return [u for u in urls if guard.blocked(u)]
