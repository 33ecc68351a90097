"""Record and replay search results and fetched pages in SQLite, so web runs repeat exactly.

``WebStore(path)`` is one SQLite file (WAL journal, safe for threads; each process opens its own
connection). ``RecordedSearch(backend, store, mode)`` and ``RecordedFetcher(fetcher, store,
mode)`` wrap any ``SearchBackend`` / ``PageFetcher``:

| mode | on a stored key | on a missing key |
|---|---|---|
| ``record`` | call the live backend once per run, overwrite | call the live backend, store |
| ``replay`` | return the stored answer | raise :class:`ReplayMiss` naming the key |
| ``replay-or-fetch`` | return the stored answer | call the live backend, store |

In ``record`` mode a key is fetched live once per wrapper object (the run); a repeat of a query
that normalises to the same key is answered from what this run stored, so that replay (which can
hold one answer per key) gives exactly what the recorded run saw.

Failures are recorded too (a fetch that raised ``FetchError`` is replayed as the same error), so
an agent sees the same observations in replay as in the recorded run.

Keys: searches by ``k`` and the normalised query (NFKC, lower case, whitespace collapsed —
:func:`normalize_query`), pages by the normalised URL (:func:`normalize_url`: lower-case scheme
and host, default port and fragment dropped, query parameters ordered by name; the order of
repeated names and every escape are kept, so ``?x=1&x=2`` and ``?x=2&x=1``, or ``%2F`` and ``/``,
are different keys).

Integrity: every record is stored with a SHA-256 checksum of its table, key and value. A record
whose checksum, JSON or shape is wrong, or that SQLite cannot read (a damaged page), raises
:class:`StoreError` naming the file and the key; a tool turns that into an observation, so the
agent never sees an answer that was not recorded. Other records stay readable.

``replay`` opens the file read-only and never writes to it (no ``-wal``/``-shm`` files are
created, so it works on a read-only mount): SQLite's ``immutable`` mode when no ``-wal`` file is
next to the store, else ``mode=ro`` (which reads the unmerged ``-wal`` of a writer that was
killed). A replay therefore reads the store as it was when opened; record into it from another
process with ``replay-or-fetch``, not ``replay``.

Stores written before checksums (no ``checksum`` column) stay readable: their rows are checked
for JSON and shape only. Opened for writing, such a store gains the column; rows written from
then on must carry a checksum, older rows may not. An old page key that a recorded URL no longer
normalises to is still found, but only for that exact URL.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from branchgym.envs.types import Hit, Page, PageFetcher, SearchBackend
from branchgym.envs.web.store_keys import (
    legacy_url_key,
    normalize_query,
    normalize_url,
    record_checksum,
)
from branchgym.errors import ConfigError, Error, FetchError, SSRFBlocked

__all__ = [
    "MODES",
    "WebStore",
    "RecordedSearch",
    "RecordedFetcher",
    "ReplayMiss",
    "StoreError",
    "StoreWriteError",
    "normalize_query",
    "normalize_url",
    "record_checksum",
]

MODES = ("record", "replay", "replay-or-fetch")
_ERRORS: dict[str, type[FetchError]] = {"FetchError": FetchError, "SSRFBlocked": SSRFBlocked}
_TABLES = {
    "searches": "key TEXT PRIMARY KEY, query TEXT, k INTEGER, value TEXT NOT NULL, created REAL,"
                " checksum TEXT",
    "pages": "key TEXT PRIMARY KEY, url TEXT, value TEXT NOT NULL, created REAL, checksum TEXT",
}
_LABEL = {"searches": "query", "pages": "url"}
_REFETCH = ("Re-record it (mode='record' or 'replay-or-fetch' with the live backend) or restore "
            "the store from a backup.")


class ReplayMiss(FetchError):
    """Replay mode found no stored answer for a key."""


class StoreError(FetchError):
    """The store cannot give back what was recorded under a key: the file is damaged, a record
    fails its checksum or has the wrong shape. The message names the file and the key."""


class StoreWriteError(Error, OSError):
    """Writing to the store failed (read-only store, damaged file, full disk); names the file."""


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ConfigError(f"record/replay mode {mode!r} is not one of {MODES}")
    return mode


# ---------------------------------------------------------------------------- record shapes
def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_error(value: dict[str, Any]) -> bool:
    return set(value) == {"error", "message"} and all(map(_is_str, value.values()))


def _is_hit(h: Any) -> bool:
    return (isinstance(h, dict) and set(h) <= {"title", "url", "snippet", "text", "score"}
            and all(_is_str(h.get(f)) for f in ("title", "url", "snippet"))
            and (h.get("text") is None or _is_str(h["text"]))
            and (h.get("score") is None or (isinstance(h["score"], (int, float))
                                            and not isinstance(h["score"], bool)
                                            and math.isfinite(h["score"]))))


def _is_page(p: Any) -> bool:
    return (isinstance(p, dict) and set(p) <= {"url", "title", "text", "links", "status",
                                               "content_type"}
            and all(_is_str(p.get(f)) for f in ("url", "title", "text"))
            and _is_str(p.get("content_type", ""))
            and isinstance(p.get("status", 200), int) and not isinstance(p.get("status"), bool)
            and isinstance(p.get("links", []), list)
            and all(isinstance(link, list) and len(link) == 2 and all(map(_is_str, link))
                    for link in p.get("links", [])))


def _well_formed(table: str, value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    if "error" in value:
        return _is_error(value)
    if table == "searches":
        return set(value) == {"hits"} and isinstance(value["hits"], list) and all(
            map(_is_hit, value["hits"]))
    return set(value) == {"page"} and _is_page(value["page"])


class WebStore:
    """A SQLite file of recorded searches and pages.

    Args:
        path: the database file (created with its parent directory at the first write).
        readonly: open it read-only and never write (replay): see the module docstring. A
            missing file is an empty store; a file SQLite cannot read raises
            :class:`StoreError` here, naming it.
    """

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._columns: dict[str, set[str]] = {}
        self._checked_from: dict[str, int] = {}  # rows above this rowid must have a checksum
        if readonly:
            with self._lock:
                self._connect()

    # ------------------------------------------------------------------------- connection
    def _connect(self) -> sqlite3.Connection | None:
        # A connection must not cross a fork (vector envs in subprocesses): reopen per process.
        if self._conn is None or self._pid != os.getpid():
            self._conn = None
            conn = self._open_readonly() if self.readonly else self._open_readwrite()
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def _damaged(self, what: str, exc: BaseException) -> StoreError:
        return StoreError(f"the web store {self.path} cannot be read ({what}: {exc}); the file is "
                          f"damaged or not a branchgym web store. {_REFETCH}")

    def _open_readonly(self) -> sqlite3.Connection | None:
        if not self.path.exists():
            return None  # an empty store: every lookup is a ReplayMiss naming the file
        wal = Path(f"{self.path}-wal")
        # immutable: no locks, no -shm; only safe when no writer left records in a -wal file
        immutable = not (wal.exists() and wal.stat().st_size > 0)
        uri = f"{self.path.resolve().as_uri()}?mode=ro" + ("&immutable=1" if immutable else "")
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False,
                                   isolation_level=None)
            self._read_schema(conn)
        except sqlite3.Error as exc:
            hint = ("" if immutable else f" It has an unmerged {wal.name}: open it once "
                    "read-write (e.g. mode='replay-or-fetch') to merge it, or copy both files "
                    "to a writable directory.")
            raise StoreError(f"the web store {self.path} cannot be opened read-only ({exc}); "
                             f"it is damaged or not a branchgym web store.{hint} "
                             f"{_REFETCH}") from exc
        return conn

    def _open_readwrite(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False,
                                   isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)")
            for table, columns in _TABLES.items():
                conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
            self._read_schema(conn)
            for table in _TABLES:
                if "checksum" not in self._columns[table]:  # a store written before checksums
                    conn.execute("BEGIN IMMEDIATE")
                    if "checksum" not in _column_names(conn, table):  # another process won
                        conn.execute(f"ALTER TABLE {table} ADD COLUMN checksum TEXT")
                        top = conn.execute(f"SELECT COALESCE(MAX(rowid), 0) FROM {table}")
                        conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                     (f"checksum_from_rowid.{table}", str(top.fetchone()[0])))
                    conn.execute("COMMIT")
            self._read_schema(conn)
        except (sqlite3.Error, OSError) as exc:
            raise StoreWriteError(f"the web store {self.path} cannot be opened for writing "
                                  f"({exc}). Check the path and its permissions, or replay it "
                                  "with mode='replay' (read-only).") from exc
        return conn

    def _read_schema(self, conn: sqlite3.Connection) -> None:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        self._columns = {t: _column_names(conn, t) for t in _TABLES if t in tables}
        limits = {}
        if "meta" in tables:
            limits = dict(conn.execute(
                "SELECT name, value FROM meta WHERE name LIKE 'checksum_from_rowid.%'").fetchall())
        self._checked_from = {}
        for t, cols in self._columns.items():
            if "checksum" not in cols:
                self._checked_from[t] = 1 << 62  # old store: no row has a checksum
            else:  # a fresh store: every row; a migrated one: the rows written since
                self._checked_from[t] = int(limits.get(f"checksum_from_rowid.{t}", 0))

    # ---------------------------------------------------------------------------- records
    def _get(self, table: str, key: str) -> tuple[Any, str | None, bool] | None:
        """``(value, label, has_checksum)`` under ``key`` (label: the query / URL), or None."""
        with self._lock:
            conn = self._connect()
            if conn is None or table not in self._columns:
                return None
            checksum = "checksum" if "checksum" in self._columns[table] else "NULL"
            try:
                row = conn.execute(f"SELECT rowid, key, value, {checksum}, {_LABEL[table]} "
                                   f"FROM {table} WHERE key = ?", (key,)).fetchone()
            except (sqlite3.Error, ValueError) as exc:  # ValueError: undecodable text
                raise self._refused(table, key, f"SQLite cannot read it: {exc}") from exc
            limit = self._checked_from[table]
        if row is None:
            return None
        rowid, stored_key, blob, digest, label = row
        if stored_key != key or not isinstance(blob, str):
            raise self._refused(table, key, "the row is damaged")
        if digest is None:
            if rowid > limit:
                raise self._refused(table, key, "its checksum is missing")
        elif digest != record_checksum(table, key, blob):
            raise self._refused(table, key, "its checksum does not match its value")
        try:
            value = json.loads(blob)
        except (ValueError, RecursionError) as exc:
            raise self._refused(table, key, f"its value is not valid JSON ({exc})") from exc
        if not _well_formed(table, value):
            raise self._refused(table, key, f"its value has the wrong shape: {blob[:120]!r}")
        return value, label if isinstance(label, str) else None, digest is not None

    def _refused(self, table: str, key: str, why: str) -> StoreError:
        kind = "search" if table == "searches" else "page"
        return StoreError(f"the recorded {kind} for key {key!r} in the web store {self.path} is "
                          f"damaged and was not replayed: {why}. {_REFETCH}")

    def _put(self, table: str, key: str, label: str, extra: Any, value: Any) -> None:
        if self.readonly:
            raise StoreWriteError(f"the web store {self.path} was opened read-only (replay); "
                                  "record with mode='record' or 'replay-or-fetch'.")
        blob = json.dumps(value, ensure_ascii=False, sort_keys=True)
        try:
            blob.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: SQLite cannot store it, a \u escape can
            blob = json.dumps(value, ensure_ascii=True, sort_keys=True)
        digest = record_checksum(table, key, blob)
        with self._lock:
            conn = self._connect()
            assert conn is not None  # a read-write store always has a connection
            try:
                if table == "searches":
                    conn.execute("INSERT OR REPLACE INTO searches (key, query, k, value, created,"
                                 " checksum) VALUES (?, ?, ?, ?, ?, ?)",
                                 (key, label, extra, blob, time.time(), digest))
                else:
                    conn.execute("INSERT OR REPLACE INTO pages (key, url, value, created, "
                                 "checksum) VALUES (?, ?, ?, ?, ?)",
                                 (key, label, blob, time.time(), digest))
            except sqlite3.Error as exc:
                raise StoreWriteError(f"writing key {key!r} to the web store {self.path} failed "
                                      f"({exc}).") from exc

    # searches ------------------------------------------------------------------------------
    @staticmethod
    def search_key(query: str, k: int) -> str:
        return f"{k}\t{normalize_query(query)}"

    def get_search(self, query: str, k: int) -> dict[str, Any] | None:
        """The recorded answer (``{"hits": [...]}`` or an error record), or None.

        Raises:
            StoreError: the record is damaged (names the file and the key).
        """
        found = self._get("searches", self.search_key(query, k))
        return None if found is None else found[0]

    def put_search(self, query: str, k: int, value: dict[str, Any]) -> None:
        self._put("searches", self.search_key(query, k), query, k, value)

    # pages ---------------------------------------------------------------------------------
    def get_page(self, url: str) -> dict[str, Any] | None:
        """The recorded page (``{"page": {...}}`` or an error record), or None.

        Raises:
            StoreError: the record is damaged (names the file and the key).
        """
        key = normalize_url(url)
        for candidate in dict.fromkeys((key, legacy_url_key(url))):
            found = self._get("pages", candidate)
            if found is None:
                continue
            value, label, verified = found
            # a row without a checksum may sit under an old, ambiguous key: it answers only the
            # URL it was recorded from
            if (candidate == key and verified) or (label is not None
                                                   and normalize_url(label) == key):
                return value
        return None

    def put_page(self, url: str, value: dict[str, Any]) -> None:
        self._put("pages", normalize_url(url), url, None, value)

    def counts(self) -> dict[str, int]:
        """How many searches and pages are stored."""
        with self._lock:
            conn = self._connect()
            try:
                return {t: 0 if conn is None or t not in self._columns else
                        conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in _TABLES}
            except sqlite3.Error as exc:
                raise self._damaged("counting records", exc) from exc

    def close(self) -> None:
        """Close this process's connection. Idempotent."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __repr__(self) -> str:
        return f"WebStore({str(self.path)!r}{', readonly=True' if self.readonly else ''})"


def _column_names(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}


def _error_record(exc: FetchError) -> dict[str, Any]:
    return {"error": type(exc).__name__ if type(exc).__name__ in _ERRORS else "FetchError",
            "message": str(exc)}


def _raise_recorded(value: dict[str, Any]) -> None:
    raise _ERRORS.get(value["error"], FetchError)(value["message"])


def _open_store(store: WebStore | str | os.PathLike[str], mode: str) -> WebStore:
    """The store to use in ``mode``: ``replay`` always reads through a read-only connection."""
    readonly = mode == "replay"
    if isinstance(store, WebStore) and store.readonly == readonly:
        return store
    if isinstance(store, WebStore) and store.readonly:
        raise ConfigError(f"mode {mode!r} writes to the store, but {store!r} is read-only; pass "
                          "its path or WebStore(path).")
    return WebStore(store.path if isinstance(store, WebStore) else store, readonly=readonly)


class RecordedSearch:
    """A ``SearchBackend`` that records to / replays from a :class:`WebStore`.

    ``backend`` may be ``None`` in ``replay`` mode (nothing live is ever called).
    """

    def __init__(self, backend: SearchBackend | None, store: WebStore | str | os.PathLike[str],
                 mode: str = "replay-or-fetch") -> None:
        self.mode = _check_mode(mode)
        if backend is None and mode != "replay":
            raise ConfigError(f"mode {mode!r} needs a live search backend; only 'replay' works "
                              "without one")
        self.backend, self.store = backend, _open_store(store, mode)
        self._recorded: set[str] = set()  # keys this run wrote (record mode)

    def search(self, query: str, k: int = 10) -> list[Hit]:
        key = self.store.search_key(query, k)
        if self.mode != "record" or key in self._recorded:
            stored = self.store.get_search(query, k)
            if stored is not None:
                if "error" in stored:
                    _raise_recorded(stored)
                return [Hit(**h) for h in stored["hits"]]
            if self.mode == "replay":
                raise ReplayMiss(
                    f"replay mode: no recorded search for key {key!r}"
                    f" (query {query!r}, k={k}) in {self.store.path}. Record it first with "
                    "mode='record' or use mode='replay-or-fetch'."
                )
        assert self.backend is not None
        try:
            hits = self.backend.search(query, k)
        except FetchError as exc:
            self.store.put_search(query, k, _error_record(exc))
            self._recorded.add(key)
            raise
        self.store.put_search(query, k, {"hits": [asdict(h) for h in hits]})
        self._recorded.add(key)
        return hits

    def close(self) -> None:
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()


class RecordedFetcher:
    """A ``PageFetcher`` that records to / replays from a :class:`WebStore`."""

    def __init__(self, fetcher: PageFetcher | None, store: WebStore | str | os.PathLike[str],
                 mode: str = "replay-or-fetch") -> None:
        self.mode = _check_mode(mode)
        if fetcher is None and mode != "replay":
            raise ConfigError(f"mode {mode!r} needs a live fetcher; only 'replay' works "
                              "without one")
        self.fetcher, self.store = fetcher, _open_store(store, mode)
        self._recorded: set[str] = set()  # keys this run wrote (record mode)

    def fetch(self, url: str) -> Page:
        key = normalize_url(url)
        if self.mode != "record" or key in self._recorded:
            stored = self.store.get_page(url)
            if stored is not None:
                if "error" in stored:
                    _raise_recorded(stored)
                page = dict(stored["page"])
                page["links"] = tuple(tuple(link) for link in page.get("links", ()))
                return Page(**page)
            if self.mode == "replay":
                raise ReplayMiss(
                    f"replay mode: no recorded page for key {key!r} in "
                    f"{self.store.path}. Record it first with mode='record' or use "
                    "mode='replay-or-fetch'."
                )
        assert self.fetcher is not None
        try:
            page = self.fetcher.fetch(url)
        except FetchError as exc:
            self.store.put_page(url, _error_record(exc))
            self._recorded.add(key)
            raise
        self.store.put_page(url, {"page": asdict(page)})
        self._recorded.add(key)
        return page

    def close(self) -> None:
        close = getattr(self.fetcher, "close", None)
        if close is not None:
            close()
