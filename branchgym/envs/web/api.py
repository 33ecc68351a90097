"""The HTTP machinery shared by the web search backends (Serper, Brave, SearXNG, Bing, Search-R1).

A backend subclass says how to build the request (:meth:`HTTPSearchBackend._request`) and how to
read the answer (:meth:`HTTPSearchBackend._parse`); this base adds the API key from an env var,
a client-side rate limiter, retries with exponential backoff and jitter on 429/5xx and transport
errors (honouring ``Retry-After``), and error messages that name the env var to fix.

What comes back is outside text: every hit's title, URL, snippet and text go through
:func:`~branchgym.envs.sanitize.clean_text` (a lone surrogate from a UTF-16 truncation, NULs and
escape sequences never reach an observation, a tokenizer or the replay store). Queries longer
than ``max_query_chars`` are refused before any request is sent.
"""

from __future__ import annotations

import abc
import dataclasses
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx

from branchgym.envs.sanitize import clean_text
from branchgym.envs.types import Hit
from branchgym.envs.web.ratelimit import RateLimiter
from branchgym.envs.web.retry import RetryPolicy, is_retryable_status, retry_after_seconds
from branchgym.errors import ConfigError, FetchError

__all__ = ["HTTPSearchBackend", "SearchRequest", "read_key", "clean_hit",
           "DEFAULT_MAX_QUERY_CHARS"]

#: Web search APIs take short queries (Google: 2,048 characters, Brave: 400); a longer one is
#: an agent's mistake, and a multi-megabyte one cannot even be put in a URL.
DEFAULT_MAX_QUERY_CHARS = 2000


def clean_hit(hit: Hit) -> Hit:
    """``hit`` with its text fields cleaned (:func:`~branchgym.envs.sanitize.clean_text`)."""
    return dataclasses.replace(
        hit, title=clean_text(hit.title or ""), url=clean_text(hit.url or ""),
        snippet=clean_text(hit.snippet or ""),
        text=None if hit.text is None else clean_text(hit.text))


@dataclass(frozen=True)
class SearchRequest:
    """One HTTP request a backend wants sent."""

    method: str
    url: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def read_key(explicit: str | None, env_vars: tuple[str, ...], service: str, signup: str) -> str:
    """The API key: the explicit argument, else the first env var that is set.

    Raises ConfigError naming the env var(s) to set when none is.
    """
    if explicit:
        return explicit
    for name in env_vars:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    raise ConfigError(
        f"{service} search needs an API key: set the environment variable {env_vars[0]} "
        f"(or pass api_key=...). Get one at {signup}."
    )


class HTTPSearchBackend(abc.ABC):
    """Base class of the HTTP search APIs (implements the ``SearchBackend`` protocol).

    Args:
        endpoint: the API URL (each backend has the public default; point it at a compatible
            server or a test server).
        timeout_s: per-request timeout (connect and read).
        retry: retry policy for 429/5xx/transport errors.
        rate: client-side limit in requests per second (``None``: unlimited); shared by the
            threads using this backend object.
        client: an ``httpx.Client`` to use (default: a private one, closed by :meth:`close`).
        sleep: how to wait between retries (injectable for tests).
        max_query_chars: longer queries raise :class:`FetchError` without a request.
    """

    name: ClassVar[str] = "http"
    default_endpoint: ClassVar[str] = ""
    key_env_vars: ClassVar[tuple[str, ...]] = ()
    max_k: ClassVar[int] = 100

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        timeout_s: float = 15.0,
        retry: RetryPolicy | None = None,
        rate: float | None = None,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_query_chars: int = DEFAULT_MAX_QUERY_CHARS,
    ) -> None:
        if not isinstance(max_query_chars, int) or max_query_chars < 1:
            raise ConfigError(f"max_query_chars must be a positive int, got {max_query_chars!r}")
        self.max_query_chars = max_query_chars
        self.endpoint = (endpoint or self.default_endpoint).rstrip("/")
        if not self.endpoint.startswith(("http://", "https://")):
            raise ConfigError(
                f"{self.name} endpoint must be an http(s) URL, got {self.endpoint!r}"
            )
        if timeout_s <= 0:
            raise ConfigError(f"timeout_s must be > 0 seconds, got {timeout_s}")
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.limiter = RateLimiter(rate)
        self._own_client = client is None
        self._client = client or httpx.Client(timeout=timeout_s, follow_redirects=False)
        self._sleep = sleep
        self._delay = self.retry.delays()
        self._lock = threading.Lock()
        self.calls = 0  # HTTP requests sent, retries included (for stats and tests)

    # -- what subclasses implement -------------------------------------------------------------
    @abc.abstractmethod
    def _request(self, query: str, k: int) -> SearchRequest:
        """The HTTP request this API expects for ``query``."""

    @abc.abstractmethod
    def _parse(self, payload: Any, k: int) -> list[Hit]:
        """The hits in this API's JSON response."""

    def _auth_hint(self) -> str:
        """What to check when the API answers 401/403."""
        if self.key_env_vars:
            return f"check the key in {self.key_env_vars[0]}"
        return "check that the server allows this request"

    # -- the protocol --------------------------------------------------------------------------
    def search(self, query: str, k: int = 10) -> list[Hit]:
        """Search ``query`` and return up to ``k`` hits, best first. Raises FetchError."""
        if not isinstance(query, str) or not query.strip():
            raise ValueError(f"query must be a non-empty string, got {query!r}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        k = min(k, self.max_k)
        query = query.strip()
        if len(query) > self.max_query_chars:
            raise FetchError(
                f"the query is {len(query)} characters long and {self.name} takes at most "
                f"{self.max_query_chars}; search with a few keywords"
            )
        req = self._request(query, k)
        payload = self._send(req)
        try:
            return [clean_hit(h) for h in self._parse(payload, k)[:k]]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise FetchError(
                f"{self.name} answered in an unexpected shape ({type(exc).__name__}: {exc}); "
                f"is {self.endpoint} really a {self.name} API endpoint?"
            ) from exc

    def _send(self, req: SearchRequest) -> Any:
        last: str = ""
        for attempt in range(self.retry.attempts):
            self.limiter.acquire()
            with self._lock:
                self.calls += 1
            wait: float | None = None
            try:
                resp = self._client.request(
                    req.method,
                    req.url,
                    params=req.params or None,
                    json=req.json,
                    headers=req.headers,
                    timeout=self.timeout_s,
                )
            except httpx.InvalidURL as exc:  # not retryable: the same request fails again
                raise FetchError(f"{self.name} cannot send this request to {req.url}: {exc}") \
                    from exc
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code < 300:
                    try:
                        return resp.json()
                    except ValueError as exc:
                        raise FetchError(
                            f"{self.name} at {req.url} returned non-JSON "
                            f"({resp.headers.get('content-type', '?')}): {resp.text[:200]!r}"
                        ) from exc
                if resp.status_code in (401, 403):
                    raise FetchError(
                        f"{self.name} refused the request (HTTP {resp.status_code}): "
                        f"{self._auth_hint()}. Body: {resp.text[:200]!r}"
                    )
                if not is_retryable_status(resp.status_code):
                    raise FetchError(
                        f"{self.name} answered HTTP {resp.status_code} for {req.url}: "
                        f"{resp.text[:300]!r}"
                    )
                last = f"HTTP {resp.status_code}"
                wait = retry_after_seconds(resp.headers.get("retry-after"), cap_s=self.retry.cap_s)
            if attempt + 1 < self.retry.attempts:
                self._sleep(self._delay(attempt) if wait is None else wait)
        raise FetchError(
            f"{self.name} search failed after {self.retry.attempts} attempts ({last}); "
            "the service may be down or rate limiting: lower rate= or retry later"
        )

    def close(self) -> None:
        """Close the private HTTP client. Idempotent."""
        if self._own_client:
            self._client.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(endpoint={self.endpoint!r})"
