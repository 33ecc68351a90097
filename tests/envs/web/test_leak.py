"""Leak guard: blocklisted mirrors dropped from search and refused when browsed; gold answers
found in tool observations flagged in info."""

from __future__ import annotations

import pytest

from branchgym.envs.types import Hit, Page
from branchgym.envs.web.leak import (
    GuardedFetcher,
    GuardedSearch,
    LeakBlocked,
    LeakGuard,
    leak_flags,
)
from branchgym.errors import ConfigError


@pytest.mark.parametrize("url", [
    "https://huggingface.co/datasets/gaia-benchmark/GAIA/viewer",
    "https://www.huggingface.co/datasets/cais/hle",
    "https://hf-mirror.com/datasets/callanwu/WebWalkerQA",
    "https://github.com/openai/simple-evals/blob/main/browsecomp_eval.py",
    "https://GitHub.com/RUC-NLPIR/ARPO/tree/main/evaluation/data",
    "https://raw.githubusercontent.com/xbench-ai/xbench-evals/main/data/DeepSearch.csv",
    "https://artofproblemsolving.com/wiki/index.php/2024_AIME_I_Problems/Problem_1",
    "https://www.kaggle.com/datasets/someone/gsm8k",
])
def test_benchmark_mirrors_are_blocked(url: str) -> None:
    assert LeakGuard().blocked(url)


@pytest.mark.parametrize("url", [
    "https://huggingface.co/Qwen/Qwen3-8B",
    "https://github.com/openai/whisper",
    "https://en.wikipedia.org/wiki/Lighthouse",
    "https://artofproblemsolving.com/wiki/index.php/Pythagorean_theorem",
])
def test_ordinary_pages_pass(url: str) -> None:
    assert LeakGuard().blocked(url) is None


def test_extra_rules_and_disable() -> None:
    guard = LeakGuard(extra=("answers.example", ("github.com", "/me/leaky")))
    assert guard.blocked("https://sub.answers.example/q/1") == "answers.example/"
    assert guard.blocked("https://github.com/me/leaky/x") == "github.com/me/leaky"
    assert LeakGuard(enabled=False).blocked("https://huggingface.co/datasets/x") is None
    with pytest.raises(ConfigError, match="host name or a"):
        LeakGuard(extra=(42,))


class ListBackend:
    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.asked: list[int] = []

    def search(self, query: str, k: int = 10) -> list[Hit]:
        self.asked.append(k)
        return [Hit(title=u, url=u, snippet="s") for u in self.urls[:k]]


def test_search_drops_mirrors_and_tops_up() -> None:
    urls = ["https://huggingface.co/datasets/gaia-benchmark/GAIA",
            "https://a.example/", "https://github.com/RUC-NLPIR/WebThinker",
            "https://b.example/", "https://c.example/"]
    backend = ListBackend(urls)
    guarded = GuardedSearch(backend)
    hits = guarded.search("gaia answers", k=3)
    assert [h.url for h in hits] == ["https://a.example/", "https://b.example/",
                                     "https://c.example/"]
    assert backend.asked == [8] and len(guarded.dropped) == 2


class MapFetcher:
    def __init__(self, pages: dict[str, Page]) -> None:
        self.pages = pages

    def fetch(self, url: str) -> Page:
        return self.pages[url]


def test_browsing_a_mirror_is_refused_also_after_a_redirect() -> None:
    landing = Page(url="https://huggingface.co/datasets/cais/hle", title="HLE", text="answers")
    fetcher = GuardedFetcher(MapFetcher({"https://short.example/x": landing}))
    with pytest.raises(LeakBlocked, match="benchmark mirror"):
        fetcher.fetch("https://huggingface.co/datasets/cais/hle")
    with pytest.raises(LeakBlocked, match="redirected"):
        fetcher.fetch("https://short.example/x")


def test_gold_answer_flags() -> None:
    text = "The Varnholt lighthouse, on Quessary, was first lit in 1887. It has 7 floors."
    assert leak_flags(text, ["1887", "Quessary", "7", "Brisemont"]) == ["1887", "Quessary"]
    assert leak_flags(text, ["7"], min_answer_chars=1) == ["7"]
    assert leak_flags("in 18870 tons", ["1887"]) == []  # whole words only
    assert leak_flags("Oskar  BRISEMONT, composer", ["Oskar Brisemont"]) == ["Oskar Brisemont"]


def test_a_redirect_chain_through_a_mirror_is_refused_at_the_hop() -> None:
    """short link → mirror → innocent landing page: the landing URL is clean, so only a check of
    every hop catches it (and the mirror is never requested)."""
    from branchgym.envs.web.fetcher import WebFetcher
    from branchgym.envs.web.loopback import LoopbackServer, Reply

    routes = {"/a": lambda r: Reply(302, b"", "text/plain", {"Location": mirror}),
              "/datasets/cais/hle": lambda r: Reply(302, b"", "text/plain", {"Location": "/final"}),
              "/final": lambda r: Reply(200, b"<p>the answers</p>", "text/html")}
    with LoopbackServer(routes) as srv:
        mirror = srv.url("/datasets/cais/hle", host="huggingface.co")
        live = WebFetcher(allow=("127.0.0.0/8",), resolver=lambda host, port: ["127.0.0.1"])
        assert "answers" in live.fetch(srv.url("/a")).text  # unguarded, the chain lands
        guarded = GuardedFetcher(WebFetcher(allow=("127.0.0.0/8",), resolver=lambda host, port: ["127.0.0.1"]))
        n = len(srv.requests)
        with pytest.raises(LeakBlocked, match="redirect passed through"):
            guarded.fetch(srv.url("/a"))
        assert [r.path for r in srv.requests[n:]] == ["/a"]
