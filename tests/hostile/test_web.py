"""Hostile web pages, URLs and search answers (the fetcher, its limits, HTML to text, clean text).

Every server here listens on 127.0.0.1 only and is reached through the fetcher's explicit
``allow=`` list; the SSRF cases use the default (empty) allowlist and check that the server saw
no request at all.
"""

from __future__ import annotations

import gzip
import socket
import sys
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator

import pytest

from branchgym.envs.core import ToolEnv
from branchgym.envs.tools.browse import BrowseTool, html_to_page
from branchgym.envs.tools.search import SearchTool
from branchgym.envs.web.fetcher import WebFetcher
from branchgym.envs.web.loopback import LoopbackServer, Reply, raw_tcp_server
from branchgym.envs.web.search_apis import SearxngSearch
from branchgym.errors import FetchError, SSRFBlocked

LOOPBACK = ("127.0.0.0/8",)
PAGE = "<title>ok</title><p>hello from loopback</p>"


@pytest.fixture()
def site() -> Iterator[LoopbackServer]:
    with LoopbackServer({"/ok": lambda r: Reply(200, PAGE, "text/html")}) as srv:
        port = srv.port
        for i, target in enumerate([f"http:127.0.0.1:{port}/ok", "http://[::1/",
                                    "http://a.com:80:80/", f"http://0177.0.0.1:{port}/ok",
                                    f"http://127.0.0.1\t:{port}/ok", "http://①②⑦.0.0.1/",
                                    "http://1.2.3.4.5/", "ht!tp://x/"]):
            srv.routes[f"/redirect{i}"] = (lambda t: lambda r: Reply(302, b"", "text/plain",
                                                                  {"Location": t}))(target)
        for cs in ("zlib", "rot13", "base64", "hex", "idna", "uu", "bz2", "undefined",
                   "punycode", "unicode_escape"):
            srv.routes[f"/charset-{cs}"] = (lambda c: lambda r: Reply(
                200, PAGE.encode(), f"text/html; charset={c}"))(cs)
        yield srv


def browse_env(**fetcher: object) -> ToolEnv:
    kwargs = {"allow": LOOPBACK, "max_time_s": 5.0, **fetcher}
    env = ToolEnv("offline-websearch", tools=["browse"], fetcher="web",
                  tool_kwargs={"fetcher": kwargs}, max_turns=64)
    env.reset(seed=0)
    return env


# ------------------------------------------------------------------ 1. never crash a step
MALFORMED = ["http://0177.0.0.1/", "http://０ｘ７ｆ.0.0.1/", "http://①②⑦.0.0.1/",
             "http://a.com:80:80/", "http://1.2.3.4.5/", "http://256.0.0.1/", "http://08.0.0.1/",
             "http://0x.0x.0x.0xg/", "http://[::1/", "http://a.com:99999/",
             "http://" + "a" * 300 + ".example/", "http://xn--/", "http://a..b/"]


@pytest.mark.parametrize("url", MALFORMED)
def test_malformed_urls_are_fetch_errors(url: str) -> None:
    fetcher = WebFetcher(allow=LOOPBACK, max_time_s=2.0, resolver=lambda h, p: [])
    with pytest.raises(FetchError):
        fetcher.fetch(url)
    with pytest.raises(FetchError):
        fetcher.fetch(url.replace("a.com", "a\t.com").replace("0.1/", "0.1\t/"))


def test_malformed_urls_and_redirects_become_observations(site: LoopbackServer) -> None:
    env = browse_env()
    urls = MALFORMED + [site.url(f"/redirect{i}") for i in range(8)]
    for url in urls:
        obs, _, terminated, truncated, info = env.step(f"<browse>{url}</browse>")
        assert "<result>" in obs and not terminated, url
    env.close()


@pytest.mark.parametrize("charset", ["zlib", "rot13", "base64", "hex", "idna", "uu", "bz2",
                                     "undefined", "punycode", "unicode_escape"])
def test_a_page_declaring_a_non_text_charset_is_read_as_utf8(site: LoopbackServer,
                                                             charset: str) -> None:
    page = WebFetcher(allow=LOOPBACK).fetch(site.url(f"/charset-{charset}"))
    assert "hello from loopback" in page.text
    env = browse_env()
    obs, *_ = env.step(f"<browse>{site.url(f'/charset-{charset}')}</browse>")
    assert "hello from loopback" in obs


@pytest.mark.parametrize("host", ["0177.0.0.1", "0x7f.0.0.1", "127.000.000.001", "127.1",
                                  "2130706433", "0x7f000001", "①②⑦.0.0.1", "１２７.0.0.1",
                                  "127.0.0.1.", "0177.0.0.01"])
def test_odd_ipv4_forms_of_loopback_are_refused(site: LoopbackServer, host: str) -> None:
    with pytest.raises(SSRFBlocked, match="loopback"):
        WebFetcher().fetch(f"http://{host}:{site.port}/ok")
    assert site.requests == []


def test_odd_ipv4_forms_are_normalised_before_the_check(site: LoopbackServer) -> None:
    fetcher = WebFetcher(allow=LOOPBACK)
    page = fetcher.fetch(f"http://0177.0.0.1:{site.port}/ok")
    assert page.title == "ok" and fetcher.network.connected == ["127.0.0.1"]


# ------------------------------------------------------------------ 2. limits are limits


class Dripping:
    """A raw HTTP server that sends ``fast`` at once, then ``head`` one byte every ``pause_s``,
    then a short body; it records how many bytes of ``head`` it managed to send."""

    def __init__(self, fast: bytes, head: bytes, pause_s: float) -> None:
        self.fast, self.head, self.pause_s = fast, head, pause_s
        self.sent = 0
        self.done = threading.Event()
        self.sock, self.port = raw_tcp_server(self.handle)

    def handle(self, conn: socket.socket) -> None:
        conn.recv(65536)
        try:
            conn.sendall(self.fast)
            for b in self.head:
                conn.sendall(bytes([b]))
                self.sent += 1
                time.sleep(self.pause_s)
            conn.sendall(b"<p>late</p>")
        except OSError:
            pass  # the client hung up, as it should at its deadline
        finally:
            conn.close()
            self.done.set()


@pytest.mark.parametrize(("fast", "head"), [
    (b"", b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 11\r\n\r\n"),
    (b"HTTP/1.1 200 OK\r\n", b"X-Pad: " + b"a" * 40 + b"\r\nContent-Length: 11\r\n\r\n"),
], ids=["status-line", "headers"])
def test_a_server_dripping_its_head_is_cut_at_max_time(fast: bytes, head: bytes) -> None:
    # 0.1 s per byte: the head takes 5-6 s, and every byte used to reset the read timeout, so
    # the fetcher read all of it and only then noticed max_time_s.
    srv = Dripping(fast, head, 0.1)
    try:
        with pytest.raises(FetchError, match="max_time_s=1.0"):
            WebFetcher(allow=LOOPBACK, max_time_s=1.0, timeout_s=1.0).fetch(
                f"http://127.0.0.1:{srv.port}/")
        srv.done.wait(30)
    finally:
        srv.sock.close()
    assert srv.done.is_set() and srv.sent < len(head), (srv.sent, len(head))


def gzip_zeros(n: int) -> bytes:
    comp, chunk = zlib.compressobj(9, zlib.DEFLATED, 31), b"\0" * (1 << 20)
    return b"".join(comp.compress(chunk) for _ in range(n >> 20)) + comp.flush()


@pytest.fixture(scope="module")
def bombs() -> Iterator[LoopbackServer]:
    one = gzip_zeros(256 << 20)  # 256 MB of zeros in ~250 KB
    two = gzip.compress(gzip_zeros(256 << 20))
    routes = {
        "/one": lambda r: Reply(200, one, "text/html", {"Content-Encoding": "gzip"}),
        "/stacked": lambda r: Reply(200, two, "text/html", {"Content-Encoding": "gzip, gzip"}),
        "/two-headers": lambda r: Reply(200, two, "text/html", {"Content-Encoding": "gzip",
                                                                 "content-encoding": "gzip"}),
        "/br": lambda r: Reply(200, b"xx", "text/html", {"Content-Encoding": "br"}),
        "/unknown": lambda r: Reply(200, b"xx", "text/html", {"Content-Encoding": "x-evil"}),
        "/small": lambda r: Reply(200, gzip.compress(PAGE.encode()), "text/html",
                                  {"Content-Encoding": "gzip"}),
        "/deflate": lambda r: Reply(200, zlib.compress(PAGE.encode()), "text/html",
                                    {"Content-Encoding": "deflate"}),
        "/raw-deflate": lambda r: Reply(200, zlib.compress(PAGE.encode())[2:-4], "text/html",
                                        {"Content-Encoding": "deflate"}),
    }
    with LoopbackServer(routes) as srv:
        yield srv


def test_a_gzip_bomb_is_decoded_only_up_to_max_bytes(bombs: LoopbackServer) -> None:
    fetcher = WebFetcher(allow=LOOPBACK, max_bytes=1_000_000, max_time_s=30)
    tracemalloc.start()
    try:
        page = fetcher.fetch(bombs.url("/one"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert page.text.endswith("[truncated at 1000000 bytes]")
    assert peak < 24_000_000, f"decoding allocated {peak} bytes for a 1 MB cap"


@pytest.mark.parametrize(("path", "match"), [("/stacked", "stacked"),
                                             ("/two-headers", "stacked"),
                                             ("/br", "'br'"), ("/unknown", "'x-evil'")])
def test_stacked_and_unknown_encodings_are_refused(bombs: LoopbackServer, path: str,
                                                   match: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(FetchError, match=match):
            WebFetcher(allow=LOOPBACK, max_bytes=1_000_000).fetch(bombs.url(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 24_000_000


@pytest.mark.parametrize("path", ["/small", "/deflate", "/raw-deflate"])
def test_ordinary_compressed_pages_still_read(bombs: LoopbackServer, path: str) -> None:
    assert "hello from loopback" in WebFetcher(allow=LOOPBACK).fetch(bombs.url(path)).text


def test_a_huge_query_is_refused_before_any_request() -> None:
    with LoopbackServer({"/search": lambda r: Reply(200, {"results": []})}) as srv:
        backend = SearxngSearch(endpoint=srv.url("/"))
        with pytest.raises(FetchError, match="characters"):
            backend.search("word " * 400_000)
        out = SearchTool(backend, max_query_chars=10**7).call("word " * 400_000)
        assert not out.ok and "2000" in out.text
        assert srv.requests == []


# ------------------------------------------------------------------ 3. HTML in linear time
def traced_lines(fn: Callable[[], object]) -> int:
    """How many Python lines ``fn`` executes (deterministic, unlike a stopwatch)."""
    count = 0

    def tracer(frame, event, arg):  # type: ignore[no-untyped-def]
        nonlocal count
        if event == "line":
            count += 1
        return tracer

    sys.settrace(tracer)
    try:
        fn()
    finally:
        sys.settrace(None)
    return count


@pytest.mark.parametrize("shape", [lambda n: "<p>para x</p>" * n,
                                   lambda n: "<div>x" * n + "</div>" * n,
                                   lambda n: "<ul>" + "<li>item</li>" * n + "</ul>",
                                   lambda n: "<table>" + "<tr><td>a</td></tr>" * n + "</table>"])
def test_html_to_page_work_grows_linearly(shape: Callable[[int], str]) -> None:
    html_to_page("https://a.example/", shape(10))  # imports and first-call setup
    small = traced_lines(lambda: html_to_page("https://a.example/", shape(200)))
    large = traced_lines(lambda: html_to_page("https://a.example/", shape(800)))
    assert large < 5 * small, (small, large)  # 4x the page; quadratic work would be ~16x


def test_html_to_page_caps_the_element_count() -> None:
    page = html_to_page("https://a.example/", "".join(f"<p>p{i}</p>" for i in range(5000)),
                        max_elements=1000)
    assert "p10" in page.text and "p4000" not in page.text
    assert page.text.endswith("[page cut after 1000 elements]")


# ------------------------------------------------------------------ 4. clean text
SURROGATE_JSON = ('{"results": [{"title": "Tide \\ud83d tables", "url": "https://t.example/'
                  '\\udc00", "content": "snip\\u0000pet \\ud800 with \\u001b[31mcolour"}]}')


def test_lone_surrogates_from_a_search_api_never_reach_the_observation(tmp_path) -> None:
    from branchgym.envs.web.factories import make_search

    with LoopbackServer({"/search": lambda r: Reply(200, SURROGATE_JSON.encode())}) as srv:
        backend = SearxngSearch(endpoint=srv.url("/"))
        (hit,) = backend.search("tides")
        for text in (hit.title, hit.url, hit.snippet):
            text.encode("utf-8")  # strict: a lone surrogate raises UnicodeEncodeError
            assert "\0" not in text and "\x1b" not in text
        recorded = make_search("branchgym.envs.web.search_apis:SearxngSearch", endpoint=srv.url(
            "/"), store=str(tmp_path / "web.sqlite"), mode="record", leak_guard=False)
        env = ToolEnv("offline-websearch", tools=["search"], search_backend=recorded)
        env.reset(seed=0)
        obs, *_ = env.step("<search>tide tables</search>")
    obs.encode("utf-8")
    assert "snip" in obs and "\0" not in obs


def test_pages_are_cleaned_like_queries() -> None:
    nasty = "<title>T\ud800</title><p>a\x00b\x1b[2Jc\x07 \x9b31m</p><a href='/x\udc00'>l\x00</a>"
    with LoopbackServer({"/p": lambda r: Reply(200, nasty.encode("utf-8", "surrogatepass"),
                                               "text/html; charset=utf-8")}) as srv:
        page = WebFetcher(allow=LOOPBACK).fetch(srv.url("/p"))
    for text in (page.title, page.text, *[x for link in page.links for x in link]):
        text.encode("utf-8")
        assert not any(ch in text for ch in "\0\x1b\x07\x9b"), repr(text)
    out = BrowseTool(_Fixed(nasty)).call("https://a.example/")
    out.text.encode("utf-8")
    assert not any(ch in out.text for ch in "\0\x1b\x07\x9b"), repr(out.text)


class _Fixed:
    """A fetcher that returns one raw page as is (as a custom fetcher or a store might)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def fetch(self, url: str):  # type: ignore[no-untyped-def]
        from branchgym.envs.types import Page

        return Page(url=url, title="t\x1b]0;pwned\x07", text=self.text, links=())


def test_python_output_is_clean_in_observations_and_on_the_terminal(capsys) -> None:
    env = ToolEnv("offline-websearch", tools=["python"], sandbox="local", render_mode="human")
    env.reset(seed=0)
    code = 'print("a\\x00b\\x1b[31mred\\x1b[0m\\x1b]0;title\\x07 \\x9b2J end")'
    obs, *_ = env.step(f"<python>{code}</python>")
    env.step("<python>print(1)</python>\x1b[2J\x00")
    env.render()
    printed = capsys.readouterr().out
    env.close()
    assert "red" in obs and "end" in obs
    for text in (obs, printed):
        assert not any(ch in text for ch in "\0\x1b\x07\x9b"), repr(text)


def test_a_search_hit_with_a_malformed_url_is_dropped_not_raised() -> None:
    from branchgym.envs.types import Hit
    from branchgym.envs.web.leak import GuardedSearch

    class Backend:
        def search(self, query: str, k: int = 10) -> list[Hit]:
            return [Hit("bad", "http://[::1/", "broken"), Hit("ok", "https://a.example/", "fine")]

    guarded = GuardedSearch(Backend())
    assert [h.title for h in guarded.search("q", 5)] == ["ok"]
    assert guarded.dropped == ["http://[::1/"]
