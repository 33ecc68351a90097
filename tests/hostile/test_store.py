"""A damaged, truncated, garbage or read-only replay store: the replay returns exactly what was
recorded or refuses with an error naming the file and the key; it never writes to the store."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import pytest

from branchgym.envs.types import Hit, Page
from branchgym.envs.web.store import (
    RecordedFetcher,
    RecordedSearch,
    ReplayMiss,
    StoreError,
    WebStore,
    normalize_url,
)
from branchgym.errors import FetchError

GAIA = Path(__file__).parents[1] / "envs" / "benchmarks" / "fixtures" / "gaia.jsonl"


def _hits(i: int) -> dict:
    return {"hits": [{"title": f"result {i}.{j}", "url": f"https://r{j}.example/{i}",
                      "snippet": f"snippet {i}.{j} " + "x" * 300, "text": None, "score": None}
                     for j in range(3)]}


def _record(db: Path, n: int) -> dict[str, dict]:
    """``n`` searches written through the store, closed cleanly (no -wal left)."""
    store = WebStore(db)
    recorded = {}
    for i in range(n):
        store.put_search(f"query {i}", 3, _hits(i))
        recorded[f"query {i}"] = _hits(i)
    store.close()
    return recorded


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_edited_record_is_refused_naming_the_file_and_key(tmp_path) -> None:
    db = tmp_path / "web.sqlite"
    _record(db, 5)
    conn = sqlite3.connect(db)  # one byte of one stored answer changes, the JSON stays valid
    (value,) = conn.execute("SELECT value FROM searches WHERE key = ?", ("3\tquery 2",)).fetchone()
    conn.execute("UPDATE searches SET value = ? WHERE key = ?",
                 (value.replace("result 2.0", "result 9.0"), "3\tquery 2"))
    conn.commit()
    conn.close()
    replay = RecordedSearch(None, db, mode="replay")
    with pytest.raises(StoreError,
                       match=r"key '3\\tquery 2' in the web store .*web\.sqlite.*checksum"):
        replay.search("query 2", 3)
    for i in (0, 1, 3, 4):  # everything else stays readable
        assert replay.search(f"query {i}", 3) == [Hit(**h) for h in _hits(i)["hits"]]


def test_damaged_pages_never_replay_a_different_record(tmp_path) -> None:
    """Bytes flipped inside the file's pages: each record replays exactly or is refused."""
    clean = tmp_path / "clean.sqlite"
    recorded = _record(clean, 200)
    size = clean.stat().st_size
    page_size = sqlite3.connect(clean).execute("PRAGMA page_size").fetchone()[0]
    outcomes = {"exact": 0, "refused": 0}
    for seed in range(8):
        db = tmp_path / f"damaged-{seed}.sqlite"
        data = bytearray(clean.read_bytes())
        rng = random.Random(seed)
        for _ in range(40):  # beyond page 1 (the header): damage inside records and b-tree pages
            pos = rng.randrange(page_size, size)
            data[pos] ^= 1 << rng.randrange(8)
        db.write_bytes(bytes(data))
        replay = RecordedSearch(None, db, mode="replay")
        for query, value in recorded.items():
            try:
                hits = replay.search(query, 3)
            except ReplayMiss as exc:  # a damaged key column: the record is not found
                assert str(db) in str(exc)
                outcomes["refused"] += 1
            except StoreError as exc:
                assert str(db) in str(exc)
                outcomes["refused"] += 1
            else:
                assert hits == [Hit(**h) for h in value["hits"]], (seed, query)
                outcomes["exact"] += 1
    assert outcomes["refused"] > 0, "the damage hit nothing: the test would be vacuous"
    assert outcomes["exact"] > outcomes["refused"], outcomes  # undamaged records stay readable


def test_garbage_row_becomes_an_observation_naming_the_file(tmp_path) -> None:
    """A row that parses but has the wrong shape (here an old row without a checksum)."""
    db = tmp_path / "web.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE searches (key TEXT PRIMARY KEY, query TEXT, k INTEGER,"
                 " value TEXT NOT NULL, created REAL)")
    conn.execute("CREATE TABLE pages (key TEXT PRIMARY KEY, url TEXT, value TEXT NOT NULL,"
                 " created REAL)")
    conn.execute("INSERT INTO searches VALUES (?, ?, ?, ?, 0)",
                 ("10\tlighthouse", "lighthouse", 10, json.dumps({"hits": [{"title": 5}]})))
    conn.execute("INSERT INTO searches VALUES (?, ?, ?, ?, 0)",
                 ("10\tbridge", "bridge", 10, "{not json"))
    conn.execute("INSERT INTO pages VALUES (?, ?, ?, 0)",
                 ("https://g.example/", "https://g.example/", json.dumps({"page": {"url": 3}})))
    conn.commit()
    conn.close()
    env = gym.make("WebSearch-GAIA-v0", search_backend="replay", fetcher="replay",
                   tools=["search", "browse"], source_kwargs={"data_files": str(GAIA)},
                   tool_kwargs={"search_backend": {"store": str(db)},
                                "fetcher": {"store": str(db)}})
    try:
        env.reset(seed=0)
        for query in ("lighthouse", "bridge"):
            obs, reward, terminated, truncated, _ = env.step(f"<search>{query}</search>")
            assert str(db) in obs and f"10\\t{query}" in obs and "damaged" in obs, obs
            assert not (terminated or truncated)
        obs, *_ = env.step("<browse>https://g.example/</browse>")
        assert str(db) in obs and "'https://g.example/'" in obs and "damaged" in obs, obs
    finally:
        env.close()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty-header"])
def test_corrupt_or_truncated_file_is_an_error_naming_the_file(tmp_path, damage) -> None:
    db = tmp_path / "web.sqlite"
    if damage == "garbage":
        db.write_bytes(random.Random(0).randbytes(50_000))
    else:
        _record(db, 200)
        data = db.read_bytes()
        cut = data[: len(data) // 3] if damage == "truncated" else b"\0" * 100 + data[100:]
        db.write_bytes(cut)
    with pytest.raises(StoreError, match=str(db)) as err:
        replay = RecordedSearch(None, db, mode="replay")
        for i in range(200):  # a truncated file opens; its missing pages fail on lookup
            try:
                replay.search(f"query {i}", 3)
            except ReplayMiss:
                pass
    assert "sqlite" not in type(err.value).__module__


def test_replay_writes_nothing_to_the_store(tmp_path) -> None:
    db = tmp_path / "web.sqlite"
    store = WebStore(db)
    store.put_search("query", 10, _hits(0))  # the env's search tool asks for 10
    store.put_page("https://p.example/a", {"page": {"url": "https://p.example/a", "title": "A",
                                                     "text": "alpha", "links": [],
                                                     "status": 200,
                                                     "content_type": "text/html"}})
    store.close()
    before = _sha(db)
    mtime = db.stat().st_mtime_ns
    assert sorted(os.listdir(tmp_path)) == ["web.sqlite"]
    env = gym.make("WebSearch-GAIA-v0", search_backend="replay", fetcher="replay",
                   tools=["search", "browse"], source_kwargs={"data_files": str(GAIA)},
                   tool_kwargs={"search_backend": {"store": str(db)},
                                "fetcher": {"store": str(db)}})
    try:
        env.reset(seed=0)
        obs, *_ = env.step("<search>query</search>")
        assert "snippet 0.0" in obs
        obs, *_ = env.step("<browse>https://p.example/a</browse>")
        assert "alpha" in obs
        assert RecordedFetcher(None, db, mode="replay").fetch("https://p.example/a").text == "alpha"
    finally:
        env.close()
    assert sorted(os.listdir(tmp_path)) == ["web.sqlite"]  # no -wal, no -shm, no journal
    assert _sha(db) == before and db.stat().st_mtime_ns == mtime


_READ_ONLY_REPLAY = textwrap.dedent("""
    import sys
    from branchgym.envs.web.store import RecordedSearch
    hits = RecordedSearch(None, sys.argv[1], mode="replay").search("query 7", 3)
    print(hits[0].title)
""")


def test_replay_from_a_read_only_mount(tmp_path) -> None:
    """A real read-only bind mount (tests run as root: chmod would not stop a write)."""
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("needs `unshare -m` (mount namespaces) to build a read-only mount")
    src, ro = tmp_path / "src", tmp_path / "ro"
    src.mkdir()
    ro.mkdir()
    _record(src / "web.sqlite", 20)
    script = tmp_path / "replay.py"
    script.write_text(_READ_ONLY_REPLAY)
    shell = (f"mount --bind {src} {ro} && mount -o remount,bind,ro {ro} && "
             f"! touch {ro}/probe 2>/dev/null && "
             f"{sys.executable} {script} {ro}/web.sqlite")
    done = subprocess.run(["unshare", "-m", "sh", "-c", shell], capture_output=True, text=True,
                          cwd=Path(__file__).parents[2], timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "result 7.0"
    assert sorted(os.listdir(src)) == ["web.sqlite"]


def test_query_order_and_escapes_are_distinct_keys(tmp_path) -> None:
    pairs = [("https://q.example/p?x=1&x=2", "https://q.example/p?x=2&x=1"),
             ("https://q.example/p?path=a%2Fb", "https://q.example/p?path=a/b"),
             ("https://q.example/p?a=1%262", "https://q.example/p?a=1&2")]
    for one, two in pairs:
        assert normalize_url(one) != normalize_url(two), (one, two)
    same = ("https://q.example/p?b=2&a=1", "https://q.example/p?a=1&b=2")
    assert normalize_url(same[0]) == normalize_url(same[1])

    class Pages:
        def fetch(self, url: str) -> Page:
            return Page(url=url, title=url, text=f"the page at {url}")

    db = tmp_path / "web.sqlite"
    urls = [u for pair in pairs for u in pair]
    rec = RecordedFetcher(Pages(), db, mode="record")
    for url in urls:
        rec.fetch(url)
    rec.store.close()
    replay = RecordedFetcher(None, db, mode="replay")
    assert [replay.fetch(u).text for u in urls] == [f"the page at {u}" for u in urls]


def test_old_store_without_checksums_stays_readable(tmp_path) -> None:
    """A store written before checksums: replayed read-only as it is (rows checked for shape);
    opened for recording, it gains the checksum column and new rows are checksummed."""
    db = tmp_path / "old.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE searches (key TEXT PRIMARY KEY, query TEXT, k INTEGER,"
                 " value TEXT NOT NULL, created REAL)")
    conn.execute("CREATE TABLE pages (key TEXT PRIMARY KEY, url TEXT, value TEXT NOT NULL,"
                 " created REAL)")
    conn.execute("INSERT INTO searches VALUES ('3\tquery 1', 'query 1', 3, ?, 0)",
                 (json.dumps(_hits(1)),))
    page = {"page": {"url": "https://o.example/s?q=a%20b", "title": "Old", "text": "old page",
                     "links": [["next", "https://o.example/2"]], "status": 200,
                     "content_type": "text/html"}}
    # the old key of this URL (query decoded and re-encoded): 'q=a+b'
    conn.execute("INSERT INTO pages VALUES ('https://o.example/s?q=a+b',"
                 " 'https://o.example/s?q=a%20b', ?, 0)", (json.dumps(page),))
    conn.commit()
    conn.close()
    before = _sha(db)
    assert RecordedSearch(None, db, mode="replay").search("query 1", 3)[0].title == "result 1.0"
    old_page = RecordedFetcher(None, db, mode="replay").fetch("https://o.example/s?q=a%20b")
    assert old_page.text == "old page" and old_page.links == (("next", "https://o.example/2"),)
    with pytest.raises(ReplayMiss):  # the old key was ambiguous: another URL does not get it
        RecordedFetcher(None, db, mode="replay").fetch("https://o.example/s?q=a+b")
    assert _sha(db) == before

    class One:
        def search(self, query: str, k: int = 10) -> list[Hit]:
            return [Hit(title="new", url="https://n.example/", snippet=query)]

    rec = RecordedSearch(One(), db, mode="replay-or-fetch")
    assert rec.search("query 1", 3)[0].title == "result 1.0"
    assert rec.search("query 2", 3)[0].title == "new"
    rec.store.close()
    rows = dict(sqlite3.connect(db).execute("SELECT key, checksum FROM searches").fetchall())
    assert rows["3\tquery 1"] is None and len(rows["3\tquery 2"]) == 64


def test_a_recorded_error_is_still_replayed_as_an_error(tmp_path) -> None:
    db = tmp_path / "web.sqlite"

    class Broken:
        def fetch(self, url: str) -> Page:
            raise FetchError(f"HTTP 500 from {url}")

    with pytest.raises(FetchError, match="HTTP 500"):
        RecordedFetcher(Broken(), db, mode="record").fetch("https://b.example/")
    with pytest.raises(FetchError, match="HTTP 500") as again:
        RecordedFetcher(None, db, mode="replay").fetch("https://b.example/")
    assert not isinstance(again.value, StoreError)


_KILLED_WRITER = textwrap.dedent("""
    import os, sys
    from branchgym.envs.web.store import WebStore
    store = WebStore(sys.argv[1])
    for i in range(50):
        store.put_search(f"query {i}", 3, {"hits": [{"title": f"t{i}", "url": "https://u/",
                                                    "snippet": "s"}]})
    os.kill(os.getpid(), 9)  # no close, no checkpoint: the records live in the -wal file
""")


def test_replay_reads_what_a_killed_writer_left_in_the_wal(tmp_path) -> None:
    db = tmp_path / "web.sqlite"
    script = tmp_path / "writer.py"
    script.write_text(_KILLED_WRITER)
    done = subprocess.run([sys.executable, str(script), str(db)], capture_output=True,
                          cwd=Path(__file__).parents[2], timeout=120)
    assert done.returncode == -9, done.stderr
    assert Path(f"{db}-wal").stat().st_size > 0  # the case under test: records only in the WAL
    replay = RecordedSearch(None, db, mode="replay")
    assert [replay.search(f"query {i}", 3)[0].title for i in range(50)] == [
        f"t{i}" for i in range(50)]


def test_a_lone_surrogate_is_recorded_and_replayed_exactly(tmp_path) -> None:
    """A UTF-16 truncation in a search API's answer: the store keeps it exactly (what the
    agent is shown is the search tool's business)."""
    db = tmp_path / "web.sqlite"
    value = {"hits": [{"title": "half \ud83d", "url": "https://s.example/", "snippet": "x"}]}
    store = WebStore(db)
    store.put_search("query", 3, value)
    store.close()
    assert WebStore(db, readonly=True).get_search("query", 3) == value
