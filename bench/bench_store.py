"""Replay store: what record checksums (and the shape checks) cost a replay (not a test).

Usage: ``python bench/bench_store.py [--n 2000] [--repeats 7] [--out bench/results]``. Writes
``store.json`` and ``store.md``.

``n`` searches (10 hits of ~300 characters each, ~4 kB of JSON per record) and ``n`` pages
(~8 kB of text) are recorded, then replayed key by key through ``RecordedSearch`` /
``RecordedFetcher`` in ``replay`` mode (read-only store), three ways, on the same records:

- ``no verification (before)``: the store module as it was before checksums (``--before REV``,
  default ``9d99cca^``, read from git): JSON only, no checksum, no shape check;
- ``shape only``: this store reading rows without a checksum (a store written before
  checksums): JSON and shape checks;
- ``checksum + shape``: this store reading checksummed rows (SHA-256 of table, key and value).

Each repeat replays all ``n`` records once per variant, the variants taking turns (page cache
warm); the table gives the median over repeats of the time per record.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from branchgym.envs.web import store as current  # noqa: E402


def _old_module(rev: str) -> Any:
    source = subprocess.run(["git", "show", f"{rev}:branchgym/envs/web/store.py"], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "store_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("store_before", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def _record(db: Path, n: int) -> tuple[list[str], list[str]]:
    ws = current.WebStore(db)
    queries, urls = [], []
    for i in range(n):
        q, url = f"query number {i}", f"https://site{i % 50}.example/page/{i}?a=1&b={i}"
        hits = [{"title": f"Result {i}.{j}", "url": f"https://r{j}.example/{i}",
                 "snippet": f"snippet {i}.{j} " + "lorem ipsum " * 25, "text": None,
                 "score": None} for j in range(10)]
        ws.put_search(q, 10, {"hits": hits})
        ws.put_page(url, {"page": {"url": url, "title": f"Page {i}", "text": "body " * 1600,
                                   "links": [[f"link {k}", f"https://l.example/{k}"]
                                             for k in range(20)],
                                   "status": 200, "content_type": "text/html"}})
        queries.append(q)
        urls.append(url)
    ws.close()
    return queries, urls


def _vacuum(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("VACUUM")
    conn.close()


def _drop_checksums(src: Path, dst: Path) -> None:
    """A copy of the store as an old (pre-checksum) store: same rows, no checksum column."""
    dst.write_bytes(src.read_bytes())
    conn = sqlite3.connect(dst)
    for table in ("searches", "pages"):
        conn.execute(f"ALTER TABLE {table} DROP COLUMN checksum")
    conn.execute("DROP TABLE meta")
    conn.commit()
    conn.execute("VACUUM")
    conn.close()


def _one_pass(wrappers: tuple[Any, Any], queries: list[str],
              urls: list[str]) -> tuple[float, float]:
    search, fetch = wrappers
    t0 = time.perf_counter()
    for q in queries:
        search.search(q, 10)
    t1 = time.perf_counter()
    for u in urls:
        fetch.fetch(u)
    t2 = time.perf_counter()
    return (t1 - t0) * 1e3 / len(queries), (t2 - t1) * 1e3 / len(urls)


def _replay_ms(variants: dict[str, tuple[Any, Path]], queries: list[str], urls: list[str],
               repeats: int) -> dict[str, dict[str, float]]:
    """Median ms per record for each variant; the variants take turns within each repeat, so a
    busy machine slows them alike."""
    wrappers = {name: (module.RecordedSearch(None, db, mode="replay"),
                       module.RecordedFetcher(None, db, mode="replay"))
                for name, (module, db) in variants.items()}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, pair in wrappers.items():
            times[name].append(_one_pass(pair, queries, urls))
    return {name: {"search_ms": statistics.median(t[0] for t in ts),
                   "page_ms": statistics.median(t[1] for t in ts)} for name, ts in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--before", default="9d99cca^")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp())
    db, old_db, before_db = (work / f"{n}.sqlite" for n in ("checked", "unchecked", "before"))
    queries, urls = _record(db, args.n)
    _drop_checksums(db, old_db)
    before_db.write_bytes(old_db.read_bytes())  # the old module opens its store read-write
    _vacuum(db)  # both stores compacted alike: the columns are the only difference
    measured = _replay_ms({"no verification (before)": (_old_module(args.before), before_db),
                           "shape only (rows without checksum)": (current, old_db),
                           "checksum + shape": (current, db)}, queries, urls, args.repeats)
    rows = list(measured.items())
    base = rows[0][1]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"n": args.n, "repeats": args.repeats, "python": platform.python_version(),
              "sqlite": sqlite3.sqlite_version, "rows": {name: r for name, r in rows}}
    (out / "store.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = ["# Replay store: cost of record checksums", "",
             f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version}; {args.n} "
             f"searches (~4 kB each) and {args.n} pages (~8 kB each) replayed read-only; median "
             f"over {args.repeats} passes of the time per record. {os.cpu_count()} CPUs shared, "
             f"load average {os.getloadavg()[0]:.1f} at the end: compare rows, not runs.", "",
             "| replay | search ms/record | vs before | page ms/record | vs before |",
             "|---|---|---|---|---|"]
    for name, r in rows:
        lines.append(f"| {name} | {r['search_ms']:.4f} | {r['search_ms'] / base['search_ms']:.2f}x"
                     f" | {r['page_ms']:.4f} | {r['page_ms'] / base['page_ms']:.2f}x |")
    (out / "store.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
