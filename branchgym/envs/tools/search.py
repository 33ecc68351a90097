"""The search tool and its local BM25 backend (docs/benchmarks.md#web-search-and-browsing).

``BM25Backend`` indexes documents (``title``, ``text``, ``url``) with ``bm25s`` (numpy backend,
no numba) once per corpus, caches the index in process and on disk, and answers a query by
summing the precomputed per-token BM25 columns of the index (one ``bincount``) and selecting the
top k with ``argpartition``. ``SearchTool`` formats hits the way ARPO or Search-R1 does and keeps
the per-episode set of queries already asked.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from branchgym.envs.tools.base import Probe, Tool, ToolContext, ToolOutput
from branchgym.envs.types import Hit
from branchgym.errors import ConfigError, FetchError

__all__ = [
    "BM25Backend",
    "SearchTool",
    "bm25_backend",
    "load_corpus",
    "normalize_query",
    "tokenize",
    "DUPLICATE_QUERY_MESSAGE",
    "NO_RESULTS_MESSAGE",
]

# ARPO's exact strings (evaluation/src, tools/search_tool.py).
DUPLICATE_QUERY_MESSAGE = "You have searched this query. Please refer to previous results."
NO_RESULTS_MESSAGE = "No search results found."
_MAX_SEEN = 10_000  # queries in a snapshot of one episode (far above any turn limit)
INDEX_VERSION = "bm25-v1"

_TOKEN_RE = re.compile(r"\w\w+", re.UNICODE)
# Same list as bm25s's "english" stopwords; copied to a frozenset so queries need no bm25s call.
_STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then "
    "there these they this to was will with".split()
)
_MEMO: dict[str, BM25Backend] = {}
_LOCK = threading.Lock()


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens of 2+ characters, English stopwords removed (index and query)."""
    return [t for t in _TOKEN_RE.findall(text.lower()) if t not in _STOPWORDS]


def normalize_query(query: str) -> str:
    """ARPO's cache/duplicate key: lower-case, non-word characters dropped, spaces collapsed."""
    return " ".join(re.sub(r"[^\w\s]", " ", query.lower()).split())


def _doc_text(d: Mapping[str, Any]) -> str:
    return f"{d.get('title', '')} {d.get('text', '')}"


def load_corpus(path: str | Path) -> list[dict[str, str]]:
    """Read a JSONL corpus: one object per line with ``title``/``text`` (optional ``url``,
    ``id``), or Search-R1's ``contents`` = ``"Title"\\ntext``."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"search corpus {str(p)!r} does not exist; pass corpus= a JSONL file "
                          "with one {\"title\", \"text\"} object per line")
    docs = []
    with p.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise ConfigError(f"{p}:{n} is not valid JSON ({e}); each line must be one "
                                  "JSON object") from None
            if "contents" in obj and "text" not in obj:
                title, _, text = str(obj["contents"]).partition("\n")
                obj = {**obj, "title": obj.get("title", title.strip().strip('"')), "text": text}
            if "text" not in obj:
                raise ConfigError(f"{p}:{n} has no 'text' or 'contents' field; got keys "
                                  f"{sorted(obj)}")
            docs.append({"id": str(obj.get("id", n)), "title": str(obj.get("title", "")),
                         "text": str(obj["text"]), "url": str(obj.get("url", ""))})
    if not docs:
        raise ConfigError(f"search corpus {str(p)!r} is empty; it needs at least one document")
    return docs


class BM25Backend:
    """BM25 over a list of documents; implements :class:`~branchgym.envs.types.SearchBackend`.

    Args:
        docs: mappings with ``title`` and ``text`` (optional ``url``).
        cache_dir: folder to save/load the index (skips re-indexing on the next start).
        k1, b: BM25 (Lucene variant) parameters.
    """

    def __init__(self, docs: Sequence[Mapping[str, Any]], cache_dir: str | Path | None = None,
                 *, k1: float = 1.5, b: float = 0.75) -> None:
        if not docs:
            raise ConfigError("BM25Backend needs at least one document; got an empty corpus")
        self.docs = docs
        self.k1, self.b = k1, b
        self._load_or_build(Path(cache_dir) if cache_dir is not None else None)

    # ------------------------------------------------------------------ construction
    @classmethod
    def for_world(cls, world: Any) -> BM25Backend:
        """The index over a world's articles, built once per world (memoised, cached on disk)."""
        key = f"world:{world.path or id(world)}:{world.version}:{world.seed}:{world.n_articles}"
        with _LOCK:
            if key not in _MEMO:
                cache = Path(world.path) / INDEX_VERSION if world.path is not None else None
                _MEMO[key] = cls(world.articles, cache)
            return _MEMO[key]

    @classmethod
    def from_jsonl(cls, path: str | Path, cache_dir: str | Path | None = None) -> BM25Backend:
        """The index over a JSONL corpus (see :func:`load_corpus`), memoised per file version."""
        p = Path(path).expanduser().resolve()
        st = p.stat() if p.is_file() else None
        key = f"jsonl:{p}:{st.st_mtime_ns if st else 0}:{st.st_size if st else 0}"
        with _LOCK:
            if key not in _MEMO:
                _MEMO[key] = cls(load_corpus(p), cache_dir)
            return _MEMO[key]

    def _fingerprint(self) -> str:
        h = hashlib.sha256(f"{INDEX_VERSION}:{self.k1}:{self.b}:{len(self.docs)}".encode())
        for d in self.docs:
            h.update(_doc_text(d).encode("utf-8", "replace"))
            h.update(b"\0")
        return h.hexdigest()

    def _load_or_build(self, cache: Path | None) -> None:
        import bm25s

        fp = self._fingerprint() if cache is not None else ""
        if cache is not None and (cache / "fingerprint").is_file():
            with contextlib.suppress(OSError, ValueError, KeyError):  # an unreadable cache is rebuilt
                if (cache / "fingerprint").read_text() == fp:
                    ret = bm25s.BM25.load(str(cache), show_progress=False, verbosity=0)
                    self._adopt(ret)
                    return
        vocab: dict[str, int] = {}
        ids = [[vocab.setdefault(t, len(vocab)) for t in tokenize(_doc_text(d))]
               for d in self.docs]
        ret = bm25s.BM25(k1=self.k1, b=self.b, backend="numpy")
        ret.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
        self._adopt(ret)
        if cache is not None:
            _save_atomically(ret, cache, fp)

    def _adopt(self, ret: Any) -> None:
        self._vocab: dict[str, int] = dict(ret.vocab_dict)
        self._data = np.asarray(ret.scores["data"], dtype=np.float32)
        self._indices = np.asarray(ret.scores["indices"], dtype=np.int64)
        self._indptr = np.asarray(ret.scores["indptr"], dtype=np.int64)
        self._n = int(ret.scores["num_docs"])

    # ------------------------------------------------------------------ query
    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for ``query`` (0 where no query token occurs)."""
        tids = sorted({self._vocab[t] for t in tokenize(query) if t in self._vocab})
        if not tids:
            return np.zeros(self._n, dtype=np.float64)
        ip = self._indptr
        idx = np.concatenate([self._indices[ip[t] : ip[t + 1]] for t in tids])
        w = np.concatenate([self._data[ip[t] : ip[t + 1]] for t in tids])
        return np.bincount(idx, weights=w, minlength=self._n)

    def search(self, query: str, k: int = 10) -> list[Hit]:
        """Top ``k`` documents with a positive score, best first.

        Ties are broken by corpus order (the lower document index first), for every ``k``: the
        top ``k`` are always the first ``k`` of a longer list, so replays, caches and pass@k
        comparisons see the same hits for the same query.
        """
        if k <= 0:
            return []
        s = self.scores(query)
        nz = np.flatnonzero(s > 0)
        if nz.size == 0:
            return []
        if nz.size > k:
            # Keep every document that scores at least the k-th best score, ties included, so
            # the corpus-order tie-break below sees all of them (argpartition alone keeps an
            # arbitrary subset of a tie that straddles position k).
            kth = np.partition(s[nz], nz.size - k)[nz.size - k]
            nz = nz[s[nz] >= kth]
        order = nz[np.lexsort((nz, -s[nz]))][:k]
        hits = []
        for i in order.tolist():
            d = self.docs[i]
            text = str(d.get("text", ""))
            hits.append(Hit(title=str(d.get("title", "")), url=str(d.get("url", "")),
                            snippet=text, text=text, score=float(s[i])))
        return hits

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"BM25Backend(n_docs={self._n}, vocab={len(self._vocab)})"


def _save_atomically(ret: Any, cache: Path, fingerprint: str) -> None:
    """Save the index to a temp folder, then rename it into place, so that processes that
    share the cache (vector env workers) never load a half-written index."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".bm25-", dir=cache.parent))
    except OSError:
        return  # a read-only cache folder only costs re-indexing next time
    try:
        # OSError: another process won the race; its index is as good as ours
        with contextlib.suppress(OSError):
            ret.save(str(tmp), show_progress=False)
            (tmp / "fingerprint").write_text(fingerprint)
            if cache.exists():  # stale or corrupt (we only build when loading failed)
                shutil.rmtree(cache, ignore_errors=True)
            os.rename(tmp, cache)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bm25_backend(source: Any = None, *, corpus: str | Path | None = None,
                 cache_dir: str | Path | None = None, **unused: Any) -> BM25Backend:
    """``SEARCH_BACKENDS["bm25"]``: the source's world articles, or ``corpus=`` a JSONL file."""
    if unused:
        raise ConfigError(f"bm25 search backend got unknown options {sorted(unused)}; it "
                          "accepts corpus= (a JSONL path) and cache_dir=")
    if corpus is not None:
        return BM25Backend.from_jsonl(corpus, cache_dir)
    world = getattr(source, "world", None)
    if world is None:
        raise ConfigError(f"bm25 search backend: task source {source!r} has no offline world; "
                          "pass corpus='path/to/corpus.jsonl' (one {\"title\", \"text\"} object "
                          "per line)")
    return BM25Backend.for_world(world)


class SearchTool(Tool):
    """``<search>query</search>``: top-k hits from a backend, formatted per protocol style.

    Args:
        backend: any ``SearchBackend``.
        top_k: hits shown (default 10 for ``"arpo"``, 3 for ``"search-r1"``).
        snippet_chars: characters kept per hit (ARPO: 1000).
        style: ``"arpo"`` -> de-duplicated ``Page {i}: {snippet}`` lines;
            ``"search-r1"`` -> ``Doc {i}(Title: {title}) {text}`` lines.
        max_query_chars: longer queries are refused with a message.

    Per-episode state: the normalised queries asked so far; asking one again returns ARPO's
    "You have searched this query..." message. ``reset`` clears it, ``fork`` copies it.
    """

    name = "search"
    main_arg = "query"
    usage = "a search query; returns the top matching pages as `Page i: snippet` lines"
    default_max_calls = 10  # ARPO's evaluation limit
    limit_verb = "search"
    probe = Probe("test query", then="another test query")

    @classmethod
    def build(cls, context: ToolContext, **kwargs: Any) -> SearchTool:
        """The backend comes from ``context.search_backend`` (a ``SEARCH_BACKENDS`` name is
        built over the env's source); the output style follows the protocol."""
        from branchgym.envs.registries import SEARCH_BACKENDS

        backend = context.search_backend
        if isinstance(backend, str):
            backend = SEARCH_BACKENDS.get(backend)(
                context.source, **context.backend_kwargs.get("search_backend", {})
            )
        kwargs.setdefault("style", "search-r1" if context.protocol == "search-r1" else "arpo")
        return cls(backend, **kwargs)

    def __init__(self, backend: Any, top_k: int | None = None, snippet_chars: int = 1000,
                 style: str = "arpo", max_query_chars: int = 1000) -> None:
        if style not in ("arpo", "search-r1"):
            raise ConfigError(f"search style {style!r} is not 'arpo' or 'search-r1'")
        if top_k is None:
            top_k = 3 if style == "search-r1" else 10
        for label, v in (("top_k", top_k), ("snippet_chars", snippet_chars),
                         ("max_query_chars", max_query_chars)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"SearchTool {label} must be a positive int, got {v!r}")
        if not callable(getattr(backend, "search", None)):
            raise ConfigError(f"SearchTool backend {backend!r} has no search(query, k) method")
        self.backend = backend
        self.top_k, self.snippet_chars, self.style = top_k, snippet_chars, style
        self.max_query_chars = max_query_chars
        self._seen: set[str] = set()
        # the function description of JSON-call protocols (hermes): no tags there
        self.description = (f"Search the corpus with a short keyword query; returns the top "
                            f"{top_k} results.")
        self.parameters = {"type": "object", "required": ["query"],
                           "properties": {"query": {"type": "string",
                                                    "description": "the search query"}}}

    def call(self, argument: str) -> ToolOutput:
        raw = argument if isinstance(argument, str) else str(argument)
        if len(raw) > 20 * self.max_query_chars:  # refuse before cleaning a megabyte string
            return ToolOutput(f"The search query is {len(raw)} characters long; keep it under "
                              f"{self.max_query_chars} characters.", ok=False,
                              metadata={"error": "too_long"})
        query = _clean(raw)
        if not query:
            return ToolOutput("Empty search query. Put keywords between the tags, e.g. "
                              "<search>founder of Kriam Holdings</search>.", ok=False,
                              metadata={"error": "empty"})
        if len(query) > self.max_query_chars:
            return ToolOutput(f"The search query is {len(query)} characters long; keep it under "
                              f"{self.max_query_chars} characters (a few keywords work best).",
                              ok=False, metadata={"error": "too_long"})
        key = normalize_query(query)
        if not tokenize(key):
            return ToolOutput(f"The query {query[:80]!r} has no searchable words (letters or "
                              "digits, two or more in a row); search with keywords instead.",
                              ok=False, metadata={"error": "no_words"})
        if key in self._seen:
            return ToolOutput(DUPLICATE_QUERY_MESSAGE, metadata={"duplicate": True})
        try:
            hits = self.backend.search(query, self.top_k)
        except FetchError as e:
            return ToolOutput(f"The search backend failed: {e}. Try again or rephrase.",
                              ok=False, metadata={"error": "backend"})
        self._seen.add(key)
        return ToolOutput(self.format(hits), metadata={"n_hits": len(hits)})

    def format(self, hits: Iterable[Hit]) -> str:
        """Render hits in this tool's style (empty -> ``No search results found.``)."""
        lines: list[str] = []
        if self.style == "arpo":
            seen: set[str] = set()
            for h in hits:
                snip = (h.snippet or "")[: self.snippet_chars]
                if not snip or snip in seen:
                    continue
                seen.add(snip)
                lines.append(f"Page {len(lines) + 1}: {snip}")
                if len(lines) >= self.top_k:
                    break
        else:
            for i, h in enumerate(list(hits)[: self.top_k], 1):
                body = (h.text or h.snippet or "")[: self.snippet_chars]
                lines.append(f"Doc {i}(Title: {h.title}) {body}")
        return "\n".join(lines) if lines else NO_RESULTS_MESSAGE

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        self._seen = set()

    def fork(self) -> SearchTool:
        twin = SearchTool.__new__(SearchTool)
        twin.__dict__.update(self.__dict__)
        twin._seen = set(self._seen)
        return twin

    def get_state(self) -> Any:
        return {"seen": sorted(self._seen)}

    def check_state(self, state: Any) -> None:
        if not isinstance(state, Mapping) or set(state) != {"seen"} or not isinstance(
                state["seen"], list):
            raise ConfigError(f"SearchTool.set_state expects {{'seen': [query, ...]}} from "
                              f"get_state(), got {type(state).__name__}")
        seen = state["seen"]
        longest = 20 * self.max_query_chars  # NFKC can lengthen a query (up to 18x)
        if len(seen) > _MAX_SEEN or not all(isinstance(q, str) and len(q) <= longest
                                            for q in seen):
            raise ConfigError(f"SearchTool state 'seen' must be at most {_MAX_SEEN} queries, "
                              f"each a str of at most {longest} characters")

    def set_state(self, state: Any) -> None:
        self.check_state(state)
        self._seen = set(state["seen"])


def _clean(text: object) -> str:
    """Text made safe: str, lone surrogates replaced, control characters turned into spaces."""
    s = text if isinstance(text, str) else str(text)
    s = s.encode("utf-8", "replace").decode("utf-8")
    return " ".join("".join(ch if ch.isprintable() or ch in "\t\n" else " " for ch in s).split())
