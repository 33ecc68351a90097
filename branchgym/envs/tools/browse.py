"""The browse tool: fetch a page, turn its HTML into text, show a window around the goal.

``html_to_page`` (:mod:`branchgym.envs.tools.html_text`) is the one HTML -> text path for the
offline world's sites and for real web pages: title, readable text with block structure kept as
lines, tables rendered as ``cell | cell`` rows, and links resolved to absolute URLs.
``WorldFetcher`` serves the offline world from memory; ``BrowseTool`` is ``<browse>url</browse>``
or ``<browse>url | goal</browse>``.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from urllib.parse import urldefrag, urlsplit

from branchgym.envs.sanitize import clean_text
from branchgym.envs.tools.base import Tool, ToolContext, ToolOutput
from branchgym.envs.tools.html_text import DEFAULT_MAX_ELEMENTS, html_to_page
from branchgym.envs.types import Page
from branchgym.errors import ConfigError, FetchError

__all__ = ["html_to_page", "WorldFetcher", "BrowseTool", "world_fetcher", "best_window",
           "DEFAULT_MAX_ELEMENTS"]

_WORD_RE = re.compile(r"\w+", re.UNICODE)
_SENT_RE = re.compile(r"(?<=[.!?])\s+|\n+")


def _word_set(s: str) -> set[str]:
    return {w for w in _WORD_RE.findall(s.lower()) if len(w) > 1}


def best_window(text: str, goal: str, window_chars: int) -> tuple[str, bool]:
    """Text within ``window_chars`` either side of the sentence best matching ``goal``.

    The match score is the word-set F1 between goal and sentence, as ARPO's browser does
    (as ARPO's evaluation code, with a 0 threshold). Returns ``(window, matched)``; with no overlap at
    all the page start is returned and ``matched`` is False.
    """
    goal_w = _word_set(goal)
    best, best_pos, best_len = 0.0, 0, 0
    pos = 0
    for sent in _SENT_RE.split(text):
        start = text.find(sent, pos) if sent else -1
        if start < 0:
            continue
        pos = start + len(sent)
        sw = _word_set(sent)
        common = len(goal_w & sw)
        if not common:
            continue
        p, r = common / len(sw), common / len(goal_w)
        f1 = 2 * p * r / (p + r)
        if f1 > best:
            best, best_pos, best_len = f1, start, len(sent)
    if best <= 0:
        return text[: 2 * window_chars], False
    lo = max(0, best_pos - window_chars)
    hi = min(len(text), best_pos + best_len + window_chars)
    return text[lo:hi], True


class WorldFetcher:
    """Serves an offline world's sites and wiki articles from memory (``PageFetcher``).

    ``http://`` is treated as ``https://``, a bare host gets its ``/``, and fragments are
    ignored. Unknown URLs raise :class:`~branchgym.errors.FetchError`.
    """

    def __init__(self, world: Any, cache_pages: int = 2048) -> None:
        self.world = world
        self._cache: OrderedDict[str, Page] = OrderedDict()
        self._cache_pages = cache_pages

    @staticmethod
    def canonical(url: str) -> str:
        u = urldefrag(url.strip())[0]
        if u.startswith("http://"):
            u = "https://" + u[len("http://") :]
        parts = urlsplit(u)
        if parts.netloc and not parts.path:
            u = u + "/"
        return u

    def fetch(self, url: str) -> Page:
        try:
            key = self.canonical(url)
        except ValueError as e:
            raise FetchError(f"malformed URL {url!r}: {e}") from None
        page = self._cache.get(key)
        if page is not None:
            self._cache.move_to_end(key)
            return page
        html = self.world.html(key)
        if html is None:
            host = urlsplit(key).netloc
            roots = [s["root"] for s in self.world.sites]
            hint = ("that site has no such page; go back to a page you opened and click one "
                    "of its links" if any(r.startswith(f"https://{host}/") for r in roots)
                    else f"the offline world serves only {roots} and https://wiki.example/wiki/...")
            raise FetchError(f"404 Not Found: {url!r}; {hint}")
        page = html_to_page(key, html)
        self._cache[key] = page
        if len(self._cache) > self._cache_pages:
            self._cache.popitem(last=False)
        return page


def world_fetcher(source: Any = None, **unused: Any) -> WorldFetcher:
    """``FETCHERS["world"]``: serve the task source's offline world."""
    if unused:
        raise ConfigError(f"world fetcher got unknown options {sorted(unused)}; it takes none")
    world = getattr(source, "world", None)
    if world is None:
        raise ConfigError(f"the 'world' fetcher needs an offline task source (one with .world), "
                          f"got {source!r}; use fetcher='web' for real pages")
    return WorldFetcher(world)


class BrowseTool(Tool):
    """``<browse>url</browse>`` or ``<browse>url | what to look for</browse>``.

    Args:
        fetcher: any ``PageFetcher``.
        max_chars: most characters of page text shown.
        window_chars: with a goal, characters kept either side of the best-matching sentence.
        summarizer: optional ``(page_text, goal) -> str`` (e.g. an LLM call) used when a goal is
            given; its failure falls back to the window.
        max_links: most links listed after the text.
    """

    name = "browse"
    main_arg = "url"
    usage = "a URL, optionally followed by ` | what to look for`; returns the page's text and links"
    default_max_calls = 10
    limit_verb = "browse"
    # no probe: a made-up URL could reach the network; check_env browses along gold paths

    @classmethod
    def build(cls, context: ToolContext, **kwargs: Any) -> BrowseTool:
        """The fetcher comes from ``context.fetcher`` (a ``FETCHERS`` name is built over the
        env's source)."""
        from branchgym.envs.registries import FETCHERS

        fetcher = context.fetcher
        if isinstance(fetcher, str):
            kwargs_f = context.backend_kwargs.get("fetcher", {})
            fetcher = FETCHERS.get(fetcher)(context.source, **kwargs_f)
        return cls(fetcher, **kwargs)

    def __init__(self, fetcher: Any, max_chars: int = 8000, window_chars: int = 3000,
                 summarizer: Callable[[str, str], str] | None = None, max_links: int = 100,
                 max_url_chars: int = 4000) -> None:
        for label, v in (("max_chars", max_chars), ("window_chars", window_chars),
                         ("max_links", max_links), ("max_url_chars", max_url_chars)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"BrowseTool {label} must be a positive int, got {v!r}")
        if not callable(getattr(fetcher, "fetch", None)):
            raise ConfigError(f"BrowseTool fetcher {fetcher!r} has no fetch(url) method")
        if summarizer is not None and not callable(summarizer):
            raise ConfigError(f"summarizer must be callable (page_text, goal) -> str, "
                              f"got {summarizer!r}")
        self.fetcher, self.summarizer = fetcher, summarizer
        self.max_chars, self.window_chars = max_chars, window_chars
        self.max_links, self.max_url_chars = max_links, max_url_chars
        self.description = ("Open a web page. Give an absolute URL, optionally followed by "
                            "' | what to look for'; returns the page text and its links.")
        self.parameters = {"type": "object", "required": ["url"], "properties": {
            "url": {"type": "string",
                    "description": "absolute URL, optionally 'URL | what to look for'"}}}

    def call(self, argument: str) -> ToolOutput:
        raw = argument if isinstance(argument, str) else str(argument)
        if len(raw) > self.max_url_chars + 2000:
            return _bad(f"The browse argument is {len(raw)} characters long; give one URL "
                        f"(under {self.max_url_chars} characters), optionally ' | goal'.")
        raw = raw.encode("utf-8", "replace").decode("utf-8")
        url, _, goal = raw.partition("|")
        url = "".join(ch for ch in url if ch.isprintable()).strip()
        goal = " ".join("".join(c if c.isprintable() else " " for c in goal).split())
        if not url:
            return _bad("Empty browse call. Put a URL between the tags, e.g. "
                        "<browse>https://harbour.example/</browse>.")
        if "://" not in url and " " not in url and "." in url.split("/")[0]:
            url = "https://" + url  # a bare host/path: assume https, as a browser would
        try:
            parts = urlsplit(url)
            ok_url = parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in url
        except ValueError:
            ok_url = False
        if not ok_url or len(url) > self.max_url_chars:
            return _bad(f"{url[:200]!r} is not a valid absolute http(s) URL. Give a full URL, "
                        "e.g. <browse>https://harbour.example/</browse>, optionally followed "
                        "by ' | what to look for'.")
        try:
            page = self.fetcher.fetch(url)
        except FetchError as e:
            return _bad(f"Could not open {url[:300]}: {e}")
        return ToolOutput(self.render(page, goal), metadata={"url": clean_text(page.url)})

    def render(self, page: Page, goal: str = "") -> str:
        """The observation: title, URL, text (or goal window / summary), then the links."""
        body, note = page.text, ""
        if goal and self.summarizer is not None:
            try:
                body = str(self.summarizer(page.text, goal))
            except Exception as e:  # a failing summariser must not end the episode
                body, _ = best_window(page.text, goal, self.window_chars)
                note = f"[summarizer failed ({type(e).__name__}); showing the matching passage]"
        elif goal:
            body, matched = best_window(page.text, goal, self.window_chars)
            if not matched:
                note = f"[nothing on this page matches {goal[:100]!r}; showing the start]"
        if len(body) > self.max_chars:
            note = (note + " " if note else "") + (
                f"[text cut at {self.max_chars} of {len(body)} characters; add ' | what to "
                "look for' after the URL to see the matching part]")
            body = body[: self.max_chars]
        parts = [f"Title: {page.title}", f"URL: {page.url}", "", body]
        if note:
            parts.append(note)
        if page.links:
            shown = page.links[: self.max_links]
            parts += ["", "Links:"] + [f"- {a}: {u}" for a, u in shown]
            if len(page.links) > len(shown):
                parts.append(f"[{len(page.links) - len(shown)} more links not shown]")
        # any fetcher's page (a custom one, an old recording) is outside text
        return clean_text("\n".join(parts))


def _bad(msg: str) -> ToolOutput:
    return ToolOutput(msg, ok=False, metadata={"error": msg[:80]})
