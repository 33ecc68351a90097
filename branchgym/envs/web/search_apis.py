"""Web search APIs as ``SearchBackend``s: Serper, Brave, SearXNG, Bing-compatible v7, Search-R1.

Each class speaks its API's documented request and response shape; keys come from env vars
(named in the error when missing). Shared retry / rate-limit behaviour lives in
:mod:`branchgym.envs.web.api`.

Backends, their requests, key env vars and the result fields read:

- ``serper``: ``POST /search {"q", "num"}``, header ``X-API-KEY`` (``SERPER_API_KEY``);
  ``organic[].title/link/snippet``.
- ``brave``: ``GET /res/v1/web/search?q&count``, header ``X-Subscription-Token``
  (``BRAVE_API_KEY``); ``web.results[].title/url/description``.
- ``searxng``: ``GET {SEARXNG_URL}/search?q&format=json``; ``results[].title/url/content``.
- ``bing``: ``GET /v7.0/search?q&count&mkt``, header ``Ocp-Apim-Subscription-Key``
  (``BING_API_KEY``, ``BING_ENDPOINT``); ``webPages.value[].name/url/snippet``.
- ``retriever``: ``POST /retrieve {"queries", "topk", "return_scores"}``
  (``BRANCHGYM_RETRIEVER_URL``); ``result[i][].document.contents/score``.
"""

from __future__ import annotations

import html
import os
import re
from typing import Any

from branchgym.envs.types import Hit
from branchgym.envs.web.api import HTTPSearchBackend, SearchRequest, clean_hit, read_key
from branchgym.errors import ConfigError, FetchError

__all__ = [
    "SerperSearch",
    "BraveSearch",
    "SearxngSearch",
    "BingSearch",
    "RetrieverSearch",
    "strip_tags",
]

_TAG = re.compile(r"<[^>]{0,200}>")


def strip_tags(text: str) -> str:
    """Drop inline HTML (``<strong>`` highlights in Brave/Bing snippets) and unescape entities."""
    return html.unescape(_TAG.sub("", text or "")).strip()


class SerperSearch(HTTPSearchBackend):
    """Google results through serper.dev (``POST https://google.serper.dev/search``)."""

    name = "serper"
    default_endpoint = "https://google.serper.dev/search"
    key_env_vars = ("SERPER_API_KEY",)

    def __init__(self, *, api_key: str | None = None, gl: str | None = None,
                 hl: str | None = None, **kwargs: Any) -> None:
        self.api_key = read_key(api_key, self.key_env_vars, "Serper", "https://serper.dev")
        self.gl, self.hl = gl, hl
        super().__init__(**kwargs)

    def _request(self, query: str, k: int) -> SearchRequest:
        body: dict[str, Any] = {"q": query, "num": k}
        if self.gl:
            body["gl"] = self.gl
        if self.hl:
            body["hl"] = self.hl
        return SearchRequest("POST", self.endpoint, json=body,
                             headers={"X-API-KEY": self.api_key})

    def _parse(self, payload: Any, k: int) -> list[Hit]:
        return [
            Hit(title=r.get("title", ""), url=r["link"], snippet=r.get("snippet", ""))
            for r in payload.get("organic", [])
        ]


class BraveSearch(HTTPSearchBackend):
    """Brave Search API (``GET https://api.search.brave.com/res/v1/web/search``)."""

    name = "brave"
    default_endpoint = "https://api.search.brave.com/res/v1/web/search"
    key_env_vars = ("BRAVE_API_KEY", "BRAVE_SEARCH_API_KEY")
    max_k = 20  # the API's documented maximum for `count`

    def __init__(self, *, api_key: str | None = None, country: str | None = None,
                 **kwargs: Any) -> None:
        self.api_key = read_key(api_key, self.key_env_vars, "Brave",
                                "https://brave.com/search/api/")
        self.country = country
        kwargs.setdefault("rate", 1.0)  # the free plan allows 1 request per second
        super().__init__(**kwargs)

    def _request(self, query: str, k: int) -> SearchRequest:
        params: dict[str, Any] = {"q": query, "count": k}
        if self.country:
            params["country"] = self.country
        return SearchRequest("GET", self.endpoint, params=params, headers={
            "X-Subscription-Token": self.api_key, "Accept": "application/json"})

    def _parse(self, payload: Any, k: int) -> list[Hit]:
        results = (payload.get("web") or {}).get("results", [])
        return [
            Hit(title=strip_tags(r.get("title", "")), url=r["url"],
                snippet=strip_tags(r.get("description", "")))
            for r in results
        ]


class SearxngSearch(HTTPSearchBackend):
    """A SearXNG instance's JSON API (``GET {SEARXNG_URL}/search?format=json``).

    The instance must list ``json`` under ``search.formats`` in its settings.yml; otherwise it
    answers 403, and the error says so.
    """

    name = "searxng"

    def __init__(self, *, endpoint: str | None = None, language: str | None = None,
                 **kwargs: Any) -> None:
        endpoint = endpoint or os.environ.get("SEARXNG_URL", "").strip()
        if not endpoint:
            raise ConfigError(
                "SearXNG search needs the instance URL: set SEARXNG_URL "
                "(e.g. http://localhost:8888) or pass endpoint=..."
            )
        self.language = language
        super().__init__(endpoint=endpoint, **kwargs)

    def _auth_hint(self) -> str:
        return "enable the JSON format: add `json` to search.formats in SearXNG's settings.yml"

    def _request(self, query: str, k: int) -> SearchRequest:
        url = self.endpoint if self.endpoint.endswith("/search") else self.endpoint + "/search"
        params: dict[str, Any] = {"q": query, "format": "json", "pageno": 1}
        if self.language:
            params["language"] = self.language
        return SearchRequest("GET", url, params=params, headers={"Accept": "application/json"})

    def _parse(self, payload: Any, k: int) -> list[Hit]:
        return [
            Hit(title=r.get("title", ""), url=r["url"], snippet=r.get("content") or "",
                score=r.get("score"))
            for r in payload.get("results", [])
        ]


class BingSearch(HTTPSearchBackend):
    """A Bing Web Search v7-compatible API (``GET .../v7.0/search``).

    Microsoft retired the public Bing Search APIs in 2025; set ``BING_ENDPOINT`` (or
    ``endpoint=``) to any service that speaks the same shape.
    """

    name = "bing"
    default_endpoint = "https://api.bing.microsoft.com/v7.0/search"
    key_env_vars = ("BING_API_KEY", "BING_SEARCH_V7_SUBSCRIPTION_KEY")
    max_k = 50

    def __init__(self, *, api_key: str | None = None, endpoint: str | None = None,
                 mkt: str = "en-US", **kwargs: Any) -> None:
        self.api_key = read_key(api_key, self.key_env_vars, "Bing-compatible",
                                "your provider (then also set BING_ENDPOINT)")
        self.mkt = mkt
        endpoint = endpoint or os.environ.get("BING_ENDPOINT", "").strip() or None
        super().__init__(endpoint=endpoint, **kwargs)

    def _request(self, query: str, k: int) -> SearchRequest:
        return SearchRequest("GET", self.endpoint, params={"q": query, "count": k,
                                                           "mkt": self.mkt},
                             headers={"Ocp-Apim-Subscription-Key": self.api_key})

    def _parse(self, payload: Any, k: int) -> list[Hit]:
        pages = (payload.get("webPages") or {}).get("value", [])
        return [Hit(title=strip_tags(r.get("name", "")), url=r["url"],
                    snippet=strip_tags(r.get("snippet", ""))) for r in pages]


def split_contents(contents: str) -> tuple[str, str]:
    """Search-R1 stores a passage as ``"Title"\\ntext``; return ``(title, text)``."""
    head, _, body = contents.partition("\n")
    return head.strip().strip('"'), body.strip()


class RetrieverSearch(HTTPSearchBackend):
    """Search-R1's retrieval server (``POST /retrieve``), e.g. a wiki-18 BM25 or e5 index.

    ``search_batch`` sends several queries in one request, as Search-R1's rollout does.
    """

    name = "retriever"

    def __init__(self, *, endpoint: str | None = None, **kwargs: Any) -> None:
        endpoint = endpoint or os.environ.get("BRANCHGYM_RETRIEVER_URL", "").strip()
        if not endpoint:
            raise ConfigError(
                "the Search-R1 retriever backend needs the server URL: set "
                "BRANCHGYM_RETRIEVER_URL (e.g. http://127.0.0.1:8000/retrieve) or pass endpoint=..."
            )
        if not endpoint.rstrip("/").endswith("/retrieve"):
            endpoint = endpoint.rstrip("/") + "/retrieve"
        super().__init__(endpoint=endpoint, **kwargs)

    def _request(self, query: str, k: int) -> SearchRequest:
        return SearchRequest("POST", self.endpoint,
                             json={"queries": [query], "topk": k, "return_scores": True})

    def _parse(self, payload: Any, k: int) -> list[Hit]:
        return self._hits(payload["result"][0])

    @staticmethod
    def _hits(items: list[Any]) -> list[Hit]:
        hits = []
        for item in items:
            # return_scores=True gives {"document": {...}, "score": s}; False gives the document.
            doc = item.get("document", item)
            title, text = split_contents(doc.get("contents", ""))
            hits.append(Hit(title=title, url=f"wiki18://{doc.get('id', '')}",
                            snippet=text, text=text, score=item.get("score")))
        return hits

    def search_batch(self, queries: list[str], k: int = 3) -> list[list[Hit]]:
        """One request for several queries; returns one hit list per query, in order."""
        if not queries:
            return []
        longest = max(len(str(q)) for q in queries)
        if longest > self.max_query_chars:
            raise FetchError(f"a query is {longest} characters long and {self.name} takes at "
                             f"most {self.max_query_chars}; search with a few keywords")
        payload = self._send(SearchRequest("POST", self.endpoint, json={
            "queries": list(queries), "topk": k, "return_scores": True}))
        return [[clean_hit(h) for h in self._hits(items)[:k]] for items in payload["result"]]
