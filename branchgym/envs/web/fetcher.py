"""Fetch real web pages safely: ``WebFetcher.fetch(url) -> Page`` (a ``PageFetcher``).

Safety: every connection goes through :class:`GuardedNetworkBackend`, which resolves the host
once, refuses it unless *every* address is public (:class:`~branchgym.envs.web.ssrf.AddressGuard`)
and then connects to the checked address itself, so no second DNS lookup can rebind it. TLS still
verifies the certificate against the host name. Redirects are followed by hand (each hop is
checked the same way, at most ``max_redirects``). Environment proxies are ignored on purpose: a
proxy would make the connection on our behalf to an address we never checked.

Caps: ``max_bytes`` of body, counted after decompression and enforced *while* decompressing
(HTML/text is truncated with a note; PDF over the cap is refused), and ``max_time_s`` for the
whole fetch: DNS, connect, TLS, request, status line, headers, body and every redirect share one
deadline (each socket operation waits at most until it), so a server that sends one byte a
second cannot hold a fetch past it. Bodies may be ``gzip`` or ``deflate`` encoded (one layer:
stacked encodings such as ``gzip, gzip`` and unknown ones are refused).

Robustness: a URL the fetcher cannot use (a malformed port or host, an IPv4 address in an invalid
legacy spelling, a redirect to one), a charset that is not a text encoding (``zlib``, ``rot13``,
``base64``, ``idna``: read as UTF-8 instead) or a page the extractor cannot read is a
:class:`~branchgym.errors.FetchError`, never another exception. Hosts are normalised first
(:func:`~branchgym.envs.web.ssrf.normalize_host`: ``http://0177.0.0.1/`` is 127.0.0.1). Titles,
text and links are cleaned (:func:`~branchgym.envs.sanitize.clean_text`).

Content: HTML and XHTML go through the browse tool's ``html_to_page``; PDF through ``pypdf``
(optional; ``pip install pypdf``); ``text/*``, JSON and XML are kept as text. Anything else is a
:class:`~branchgym.errors.FetchError` naming the content type.
"""

from __future__ import annotations

import codecs
import ipaddress
import io
import threading
import time
import typing
import zlib
from collections.abc import Iterable
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpcore
import httpx

from branchgym.envs.sanitize import clean_text
from branchgym.envs.types import Page
from branchgym.envs.web.ssrf import AddressGuard, Resolver, normalize_host, system_resolver
from branchgym.errors import ConfigError, FetchError

__all__ = ["WebFetcher", "GuardedNetworkBackend", "DEFAULT_USER_AGENT"]

DEFAULT_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36 branchgym/0.1"
)
_TEXT_TYPES = ("text/plain", "text/markdown", "text/csv", "application/json", "text/xml",
               "application/xml")
_HTML_TYPES = ("text/html", "application/xhtml+xml")
#: Python codecs that are not web page charsets (they decode to nonsense or fail on any page).
_NOT_CHARSETS = frozenset({"idna", "punycode", "undefined", "unicode_escape",
                           "raw_unicode_escape", "unicode_internal", "mbcs", "oem"})


class _Deadline(threading.local):
    """The end of the fetch running in this thread (``None``: no fetch running)."""

    at: float | None = None

    def remaining(self, timeout: float | None, what: str) -> float | None:
        """``timeout`` shortened to the deadline; raises the matching timeout when it passed."""
        if self.at is None:
            return timeout
        left = self.at - time.monotonic()
        if left <= 0:
            exc = {"connect": httpcore.ConnectTimeout,
                   "write": httpcore.WriteTimeout}.get(what, httpcore.ReadTimeout)
            raise exc(f"the fetch deadline passed before {what}")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every read and write waits at most until the fetch deadline."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._stream, self._deadline = stream, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._deadline.remaining(timeout, "read"))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._deadline.remaining(timeout, "write"))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: typing.Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        inner = self._stream.start_tls(ssl_context, server_hostname,
                                       self._deadline.remaining(timeout, "connect"))
        return _DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class GuardedNetworkBackend(httpcore.SyncBackend):
    """An httpcore network backend that checks the resolved address before it connects."""

    def __init__(self, guard: AddressGuard) -> None:
        self.guard = guard
        self.connected: list[str] = []  # the addresses actually dialled (for tests and logs)
        self.deadline = _Deadline()

    def _resolve(self, host: str, port: int, timeout: float | None) -> list[typing.Any]:
        """``guard.resolve`` with a time limit (the OS resolver itself has none)."""
        try:
            ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
        except ValueError:
            pass
        else:
            return self.guard.resolve(host, port)  # a literal address: no lookup
        box: dict[str, typing.Any] = {}

        def run() -> None:
            try:
                box["ok"] = self.guard.resolve(host, port)
            except BaseException as exc:  # handed to the caller's thread below
                box["err"] = exc

        worker = threading.Thread(target=run, name=f"resolve {host}", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            raise httpcore.ConnectTimeout(f"DNS lookup of {host!r} took longer than {timeout} s")
        if "err" in box:
            raise box["err"]
        return typing.cast(list[typing.Any], box["ok"])

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self._resolve(host, port, self.deadline.remaining(timeout, "connect"))
        last: Exception | None = None
        for ip in addresses:
            try:
                stream = super().connect_tcp(str(ip), port,
                                             timeout=self.deadline.remaining(timeout, "connect"),
                                             local_address=local_address,
                                             socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
                continue
            self.connected.append(str(ip))
            return _DeadlineStream(stream, self.deadline)
        assert last is not None  # resolve() never returns an empty list
        raise last


def _basic_html_to_page(url: str, html: str) -> Page:
    """Fallback when the browse tool's ``html_to_page`` is not importable (kept minimal)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    for tag in soup(["script", "style", "noscript"]):
        tag.decompose()
    title = soup.title.get_text(" ", strip=True) if soup.title else url
    links = tuple((a.get_text(" ", strip=True), urljoin(url, a["href"]))
                  for a in soup.find_all("a", href=True))
    return Page(url=url, title=title, text=soup.get_text("\n", strip=True), links=links)


def html_to_page(url: str, html: str) -> Page:
    """HTML -> Page through the browse tool (one extraction code path for both worlds)."""
    try:
        from branchgym.envs.tools.browse import html_to_page as tool_html_to_page
    except ImportError:
        return _basic_html_to_page(url, html)
    return tool_html_to_page(url, html)


def pdf_to_text(data: bytes, *, max_pages: int = 50) -> tuple[str, str]:
    """Extract ``(title, text)`` from PDF bytes with pypdf."""
    try:
        import pypdf
    except ImportError:
        raise FetchError(
            "this URL is a PDF and reading PDFs needs pypdf: pip install 'branchgym[benchmarks]'"
        ) from None
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
        parts = [(page.extract_text() or "") for page in reader.pages[:max_pages]]
    except Exception as exc:  # pypdf raises many types for broken files
        raise FetchError(f"cannot read the PDF ({type(exc).__name__}: {exc})") from exc
    return str(meta_title), "\n".join(p.strip() for p in parts if p.strip())


class WebFetcher:
    """Fetches ``http(s)`` URLs from the real web, guarded against SSRF.

    Args:
        timeout_s: connect/read timeout of each request.
        max_time_s: wall-clock cap on the whole fetch (all redirects and the body).
        max_bytes: body size cap.
        max_redirects: hops followed before giving up.
        allow: CIDR networks permitted although not public (tests: ``("127.0.0.0/8",)``).
        resolver: DNS resolver ``(host, port) -> [address]`` (tests inject one).
        user_agent: the User-Agent header.
        verify: TLS verification (``True``, or an ``ssl.SSLContext``).
    """

    def __init__(
        self,
        *,
        timeout_s: float = 15.0,
        max_time_s: float = 30.0,
        max_bytes: int = 5_000_000,
        max_redirects: int = 5,
        allow: Iterable[str] = (),
        resolver: Resolver | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        verify: typing.Any = True,
    ) -> None:
        for name, value in (("timeout_s", timeout_s), ("max_time_s", max_time_s),
                            ("max_bytes", max_bytes)):
            if value <= 0:
                raise ConfigError(f"WebFetcher {name} must be > 0, got {value}")
        if max_redirects < 0:
            raise ConfigError(f"WebFetcher max_redirects must be >= 0, got {max_redirects}")
        self.timeout_s, self.max_time_s = timeout_s, max_time_s
        self.max_bytes, self.max_redirects = max_bytes, max_redirects
        self.url_checks: list[typing.Callable[[str], None]] = []
        """called with every URL before it is requested, redirect hops included (they raise to
        refuse it); the leak guard adds itself here so a chain through a mirror is refused."""
        self.guard = AddressGuard(allow=tuple(allow), resolver=resolver or system_resolver)
        self.network = GuardedNetworkBackend(self.guard)
        transport = httpx.HTTPTransport(verify=verify, trust_env=False)
        # httpx has no public knob for the network backend; replace its pool with one that
        # dials through the guard (same settings otherwise).
        transport._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            network_backend=self.network,
        )
        # Only the encodings _Decoder reads (httpx would also offer br/zstd when installed).
        self._client = httpx.Client(transport=transport, trust_env=False, follow_redirects=False,
                                    timeout=timeout_s, headers={"User-Agent": user_agent,
                                                                "Accept-Encoding": "gzip, deflate"})

    def _check_url(self, url: str) -> str:
        """The URL to request: checked, its host normalised (raises FetchError/SSRFBlocked)."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise FetchError(f"cannot fetch {url[:300]!r}: malformed URL ({exc})") from None
        if parts.scheme not in ("http", "https"):
            raise FetchError(f"cannot fetch {url[:300]!r}: only http:// and https:// URLs are "
                             "supported")
        if not parts.hostname:
            raise FetchError(f"cannot fetch {url[:300]!r}: the URL has no host name")
        if ":" in parts.hostname:  # IPv6 literal
            try:
                host = f"[{ipaddress.IPv6Address(parts.hostname.split('%', 1)[0])}]"
            except ValueError:
                raise FetchError(f"cannot fetch {url[:300]!r}: {parts.hostname!r} is not an "
                                 "IPv6 address") from None
        else:
            host = normalize_host(parts.hostname)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = (f"{userinfo}@" if userinfo else "") + host + (
            f":{port}" if port is not None else "")
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
        for check in self.url_checks:
            check(url)
        self.guard.check_host(host)
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return url
        self.guard.check_address(str(literal), host=host)  # refused before any connection
        return url

    def fetch(self, url: str) -> Page:
        """Fetch ``url`` (following checked redirects) and extract its text.

        Raises :class:`FetchError` (or its subclass ``SSRFBlocked``) and nothing else for
        anything a URL, a server or a page can do.
        """
        if not isinstance(url, str) or not url.strip():
            raise FetchError(f"cannot fetch {url!r}: give an absolute http(s) URL")
        deadline = self.network.deadline
        if deadline.at is not None:
            raise FetchError("WebFetcher.fetch was called again while a fetch is running in "
                             "this thread")
        deadline.at = time.monotonic() + self.max_time_s
        try:
            return self._fetch(url.strip())
        except FetchError:
            raise
        except httpx.TimeoutException as exc:
            raise self._timeout(url, exc) from exc
        except (httpx.HTTPError, httpx.InvalidURL, httpx.CookieConflict, ValueError,
                UnicodeError, LookupError, zlib.error, OSError) as exc:
            raise FetchError(f"could not fetch {url[:300]!r}: {type(exc).__name__}: "
                             f"{str(exc)[:300]}") from exc
        finally:
            deadline.at = None

    def _timeout(self, url: str, exc: Exception) -> FetchError:
        if time.monotonic() >= (self.network.deadline.at or 0) - 0.05:
            return FetchError(f"fetching {url[:300]!r} took longer than "
                              f"max_time_s={self.max_time_s}; the server is too slow")
        return FetchError(f"timed out fetching {url[:300]!r} ({exc}; timeout_s={self.timeout_s})")

    def _fetch(self, url: str) -> Page:
        for _hop in range(self.max_redirects + 1):
            url = self._check_url(url)
            with self._client.stream("GET", url) as r:
                if r.is_redirect and "location" in r.headers:
                    url = urljoin(url, r.headers["location"])
                    continue
                if r.status_code >= 400:
                    raise FetchError(f"{url!r} answered HTTP {r.status_code}")
                body, truncated = self._read(r, url)
                return self._to_page(str(r.url), r, body, truncated)
        raise FetchError(f"too many redirects (more than {self.max_redirects}) from {url!r}")

    def _read(self, r: httpx.Response, url: str) -> tuple[bytes, bool]:
        """The decoded body, at most ``max_bytes`` of it (``True``: there was more)."""
        declared = r.headers.get("content-length")
        ctype = r.headers.get("content-type", "").lower()
        if "pdf" in ctype and declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchError(f"{url!r} is a {declared}-byte PDF, over max_bytes={self.max_bytes}")
        decoder = _Decoder(r.headers.get_list("content-encoding", split_commas=True), url)
        chunks: list[bytes] = []
        size = wire = 0
        for raw in r.iter_raw():
            wire += len(raw)
            piece = decoder.decode(raw, self.max_bytes + 1 - size)
            chunks.append(piece)
            size += len(piece)
            if size > self.max_bytes or wire > self.max_bytes:
                if "pdf" in ctype:
                    raise FetchError(f"{url!r}: PDF larger than max_bytes={self.max_bytes}")
                return b"".join(chunks)[: self.max_bytes], True
            if time.monotonic() > (self.network.deadline.at or float("inf")):
                raise FetchError(f"fetching {url!r} took longer than max_time_s={self.max_time_s}")
        return b"".join(chunks), False

    def _to_page(self, url: str, r: httpx.Response, body: bytes, truncated: bool) -> Page:
        ctype = r.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        note = f"\n[truncated at {self.max_bytes} bytes]" if truncated else ""
        url = clean_text(url)
        if ctype == "application/pdf" or (not ctype and body[:5] == b"%PDF-"):
            title, text = pdf_to_text(body)
            return Page(url=url, title=clean_text(title) or url.rsplit("/", 1)[-1],
                        text=clean_text(text), status=r.status_code,
                        content_type="application/pdf")
        text = clean_text(decode_body(body, r.charset_encoding))
        if ctype in _HTML_TYPES or (not ctype and "<html" in text[:1000].lower()):
            try:
                page = html_to_page(url, text)
            except Exception as exc:  # a page must never end the episode
                raise FetchError(f"cannot read the HTML of {url!r} ({type(exc).__name__}: "
                                 f"{str(exc)[:200]})") from exc
            links = tuple((clean_text(a), clean_text(u)) for a, u in page.links)
            return Page(url=url, title=clean_text(page.title), text=clean_text(page.text) + note,
                        links=links, status=r.status_code, content_type=ctype or "text/html")
        if ctype.startswith("text/") or ctype in _TEXT_TYPES or not ctype:
            return Page(url=url, title=url.rsplit("/", 1)[-1] or url,
                        text=clean_text(text) + note, status=r.status_code,
                        content_type=ctype or "text/plain")
        raise FetchError(
            f"{url!r} has content type {ctype[:100]!r}, which the browser cannot read "
            "(HTML, PDF and plain text are supported)"
        )

    def close(self) -> None:
        """Close the HTTP client. Idempotent."""
        self._client.close()


def decode_body(body: bytes, charset: str | None) -> str:
    """``body`` as text in its declared charset, or UTF-8 when the charset is missing, unknown
    or not a text encoding (``zlib``, ``rot13``, ``base64``, ``idna``, ...); never raises."""
    name = "utf-8"
    if charset:
        try:
            info = codecs.lookup(charset.strip())
        except (LookupError, ValueError, TypeError):
            info = None
        if (info is not None and getattr(info, "_is_text_encoding", True)
                and info.name.replace("-", "_") not in _NOT_CHARSETS):
            name = info.name
    try:
        return body.decode(name, "replace")
    except (UnicodeError, LookupError, ValueError, TypeError):
        return body.decode("utf-8", "replace")


class _Decoder:
    """Undoes one ``Content-Encoding`` layer, producing at most what the caller has room for."""

    def __init__(self, encodings: list[str], url: str) -> None:
        names = [e.strip().lower() for e in encodings if e.strip()]
        names = [n for n in names if n != "identity"]
        if len(names) > 1:
            raise FetchError(f"{url!r} sent a body with stacked encodings {', '.join(names)!r}; "
                             "refused (a compressed body is compressed once)")
        self.kind = names[0] if names else "identity"
        if self.kind not in ("identity", "gzip", "x-gzip", "deflate"):
            raise FetchError(f"{url!r} sent a body with Content-Encoding {self.kind[:50]!r}, "
                             "which the fetcher does not read (it asks for gzip or deflate)")
        self._z: typing.Any = None

    def decode(self, data: bytes, room: int) -> bytes:
        if self.kind == "identity":
            return data
        if self._z is None:
            if self.kind == "deflate" and not _is_zlib_header(data):
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, as some servers send
            else:
                self._z = zlib.decompressobj(zlib.MAX_WBITS | (16 if self.kind != "deflate" else 0))
        out: list[bytes] = []
        while data and room > 0 and not self._z.eof:
            piece = self._z.decompress(data, room)
            out.append(piece)
            room -= len(piece)
            data = self._z.unconsumed_tail
        return b"".join(out)


def _is_zlib_header(data: bytes) -> bool:
    return len(data) >= 2 and data[0] & 0x0F == 8 and ((data[0] << 8) | data[1]) % 31 == 0
