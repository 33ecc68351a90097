"""Fetch real web pages safely: ``WebFetcher.fetch(url) -> Page`` (a ``PageFetcher``).

Safety: every connection goes through :class:`GuardedNetworkBackend`, which resolves the host
once, refuses it unless *every* address is public (:class:`~branchgym.envs.web.ssrf.AddressGuard`)
and then connects to the checked address itself, so no second DNS lookup can rebind it. TLS still
verifies the certificate against the host name. Redirects are followed by hand (each hop is
checked the same way, at most ``max_redirects``). Environment proxies are ignored on purpose: a
proxy would make the connection on our behalf to an address we never checked.

Caps: ``max_bytes`` of body (HTML/text is truncated with a note; PDF over the cap is refused) and
``max_time_s`` for the whole fetch, redirects included.

Content: HTML and XHTML go through the browse tool's ``html_to_page``; PDF through ``pypdf``
(optional; ``pip install pypdf``); ``text/*``, JSON and XML are kept as text. Anything else is a
:class:`~branchgym.errors.FetchError` naming the content type.
"""

from __future__ import annotations

import io
import time
import typing
from collections.abc import Iterable
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from branchgym.envs.types import Page
from branchgym.envs.web.ssrf import AddressGuard, Resolver, system_resolver
from branchgym.errors import ConfigError, FetchError, SSRFBlocked

__all__ = ["WebFetcher", "GuardedNetworkBackend", "DEFAULT_USER_AGENT"]

DEFAULT_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36 branchgym/0.1"
)
_TEXT_TYPES = ("text/plain", "text/markdown", "text/csv", "application/json", "text/xml",
               "application/xml")
_HTML_TYPES = ("text/html", "application/xhtml+xml")


class GuardedNetworkBackend(httpcore.SyncBackend):
    """An httpcore network backend that checks the resolved address before it connects."""

    def __init__(self, guard: AddressGuard) -> None:
        self.guard = guard
        self.connected: list[str] = []  # the addresses actually dialled (for tests and logs)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self.guard.resolve(host, port)
        last: Exception | None = None
        for ip in addresses:
            try:
                stream = super().connect_tcp(str(ip), port, timeout=timeout,
                                             local_address=local_address,
                                             socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
                continue
            self.connected.append(str(ip))
            return stream
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
        self._client = httpx.Client(transport=transport, trust_env=False, follow_redirects=False,
                                    timeout=timeout_s, headers={"User-Agent": user_agent})

    def _check_url(self, url: str) -> None:
        for check in self.url_checks:
            check(url)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise FetchError(f"cannot fetch {url!r}: only http:// and https:// URLs are supported")
        if not parts.hostname:
            raise FetchError(f"cannot fetch {url!r}: the URL has no host name")
        self.guard.check_host(parts.hostname)

    def fetch(self, url: str) -> Page:
        """Fetch ``url`` (following checked redirects) and extract its text."""
        if not isinstance(url, str) or not url.strip():
            raise FetchError(f"cannot fetch {url!r}: give an absolute http(s) URL")
        url = url.strip()
        deadline = time.monotonic() + self.max_time_s
        for _hop in range(self.max_redirects + 1):
            self._check_url(url)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FetchError(f"fetching {url!r} took longer than max_time_s={self.max_time_s}")
            try:
                with self._client.stream("GET", url, timeout=min(self.timeout_s, remaining)) as r:
                    if r.is_redirect and "location" in r.headers:
                        url = urljoin(url, r.headers["location"])
                        continue
                    if r.status_code >= 400:
                        raise FetchError(f"{url!r} answered HTTP {r.status_code}")
                    body, truncated = self._read(r, deadline, url)
                    return self._to_page(str(r.url), r, body, truncated)
            except SSRFBlocked:
                raise
            except httpx.TimeoutException as exc:
                raise FetchError(f"timed out fetching {url!r} ({exc})") from exc
            except httpx.HTTPError as exc:
                raise FetchError(f"could not fetch {url!r}: {type(exc).__name__}: {exc}") from exc
        raise FetchError(f"too many redirects (more than {self.max_redirects}) from {url!r}")

    def _read(self, r: httpx.Response, deadline: float, url: str) -> tuple[bytes, bool]:
        declared = r.headers.get("content-length")
        ctype = r.headers.get("content-type", "").lower()
        if "pdf" in ctype and declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchError(f"{url!r} is a {declared}-byte PDF, over max_bytes={self.max_bytes}")
        chunks: list[bytes] = []
        size = 0
        for chunk in r.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size > self.max_bytes:
                if "pdf" in ctype:
                    raise FetchError(f"{url!r}: PDF larger than max_bytes={self.max_bytes}")
                return b"".join(chunks)[: self.max_bytes], True
            if time.monotonic() > deadline:
                raise FetchError(f"fetching {url!r} took longer than max_time_s={self.max_time_s}")
        return b"".join(chunks), False

    def _to_page(self, url: str, r: httpx.Response, body: bytes, truncated: bool) -> Page:
        ctype = r.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        note = f"\n[truncated at {self.max_bytes} bytes]" if truncated else ""
        if ctype == "application/pdf" or (not ctype and body[:5] == b"%PDF-"):
            title, text = pdf_to_text(body)
            return Page(url=url, title=title or url.rsplit("/", 1)[-1], text=text,
                        status=r.status_code, content_type="application/pdf")
        text = body.decode(r.encoding or "utf-8", errors="replace")
        if ctype in _HTML_TYPES or (not ctype and "<html" in text[:1000].lower()):
            page = html_to_page(url, text)
            return Page(url=url, title=page.title, text=page.text + note, links=page.links,
                        status=r.status_code, content_type=ctype or "text/html")
        if ctype.startswith("text/") or ctype in _TEXT_TYPES or not ctype:
            return Page(url=url, title=url.rsplit("/", 1)[-1] or url, text=text + note,
                        status=r.status_code, content_type=ctype or "text/plain")
        raise FetchError(
            f"{url!r} has content type {ctype!r}, which the browser cannot read "
            "(HTML, PDF and plain text are supported)"
        )

    def close(self) -> None:
        """Close the HTTP client. Idempotent."""
        self._client.close()
