"""SSRF guard: addresses, names, redirects and DNS answers that must be refused.

The refused cases never send a packet: the guard raises before connecting. The only server is
on loopback, reached only where a test passes an explicit allowlist.
"""

from __future__ import annotations

import ipaddress

import pytest

from branchgym.envs.web.fetcher import WebFetcher
from branchgym.envs.web.loopback import LoopbackServer, Reply
from branchgym.envs.web.ssrf import AddressGuard, blocked_reason, normalize_host
from branchgym.errors import ConfigError, FetchError, SSRFBlocked

LOOPBACK = ("127.0.0.0/8",)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.0.10", "private"),
        ("169.254.1.1", "link-local"),
        ("169.254.169.254", "cloud metadata"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("224.0.0.251", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fc00::5", "IPv6 unique-local"),
        ("fd00:ec2::254", "cloud metadata"),
        ("::ffff:127.0.0.1", "IPv4-mapped IPv6 (loopback)"),
        ("::ffff:10.0.0.1", "IPv4-mapped IPv6 (private)"),
        ("::", "unspecified"),
        ("ff02::1", "multicast"),
    ],
)
def test_non_public_addresses_are_refused(address: str, reason: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None


def test_allowlist_admits_only_its_networks() -> None:
    guard = AddressGuard(allow=LOOPBACK)
    assert guard.is_allowed(ipaddress.ip_address("127.0.0.1"))
    assert not guard.is_allowed(ipaddress.ip_address("10.0.0.1"))
    assert not guard.is_allowed(ipaddress.ip_address("::1"))


def test_allowlist_rejects_bad_input_with_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"allow=\('127.0.0.0/8',\)"):
        AddressGuard(allow="127.0.0.0/8")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not an IP network"):
        AddressGuard(allow=("localhost",))


@pytest.fixture()
def server():
    with LoopbackServer({"/ok": lambda r: Reply(200, "<title>ok</title><p>fine</p>",
                                                "text/html")}) as srv:
        yield srv


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "2130706433"])
def test_default_fetcher_refuses_loopback(server: LoopbackServer, host: str) -> None:
    fetcher = WebFetcher()
    with pytest.raises(SSRFBlocked, match="loopback"):
        fetcher.fetch(f"http://{host}:{server.port}/ok")
    assert server.requests == []  # refused before any connection


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/",
        "http://192.168.1.1:8080/admin",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://[fe80::1]/",
        "http://100.100.100.200/latest/meta-data/",
        "http://0.0.0.0:80/",
    ],
)
def test_private_link_local_and_metadata_are_refused(url: str) -> None:
    with pytest.raises(SSRFBlocked):
        WebFetcher().fetch(url)


def test_non_http_schemes_are_refused() -> None:
    for url in ("file:///etc/passwd", "gopher://example.com/", "ftp://example.com/x"):
        with pytest.raises(FetchError, match="only http"):
            WebFetcher().fetch(url)


@pytest.mark.parametrize(
    "target",
    ["http://10.1.2.3/secret", "http://169.254.169.254/latest/meta-data/",
     "http://[::1]:9/", "http://metadata.google.internal/"],
)
def test_redirect_to_private_is_refused(target: str) -> None:
    with LoopbackServer({"/go": lambda r: Reply(302, b"", "text/plain",
                                                {"Location": target})}) as srv:
        fetcher = WebFetcher(allow=LOOPBACK)
        with pytest.raises(SSRFBlocked):
            fetcher.fetch(srv.url("/go"))
        assert [r.path for r in srv.requests] == ["/go"]


def test_redirect_within_the_allowlist_is_followed(server: LoopbackServer) -> None:
    server.routes["/go"] = lambda r: Reply(301, b"", "text/plain", {"Location": "/ok"})
    page = WebFetcher(allow=LOOPBACK).fetch(server.url("/go"))
    assert page.url.endswith("/ok") and "fine" in page.text
    assert [r.path for r in server.requests] == ["/go", "/ok"]


def test_dns_answer_to_private_is_refused() -> None:
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return {"innocent.test": ["10.0.0.7"], "mixed.test": ["93.184.215.14", "192.168.0.3"],
                "meta.test": ["169.254.169.254"], "v6.test": ["fd12::1"]}[host]

    fetcher = WebFetcher(resolver=resolver)
    for host in ("innocent.test", "mixed.test", "meta.test", "v6.test"):
        with pytest.raises(SSRFBlocked, match=f"host '{host}' resolves to it"):
            fetcher.fetch(f"http://{host}/")
    assert calls == ["innocent.test", "mixed.test", "meta.test", "v6.test"]
    assert fetcher.network.connected == []  # not even the public address of mixed.test


def test_fetcher_dials_the_checked_address_once(server: LoopbackServer) -> None:
    """DNS rebinding: a second lookup would answer 10.0.0.1; the fetcher never makes one."""
    answers = iter([["127.0.0.1"], ["10.0.0.1"], ["10.0.0.1"]])
    lookups: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        lookups.append(host)
        return next(answers)

    fetcher = WebFetcher(allow=LOOPBACK, resolver=rebinding)
    page = fetcher.fetch(f"http://rebind.test:{server.port}/ok")
    assert "fine" in page.text
    assert lookups == ["rebind.test"]
    assert fetcher.network.connected == ["127.0.0.1"]
    assert server.requests[0].headers["host"] == f"rebind.test:{server.port}"


@pytest.mark.parametrize(("host", "address"), [
    ("0177.0.0.1", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("127.000.000.001", "127.0.0.1"),
    ("2130706433", "127.0.0.1"), ("①②⑦.0.0.1", "127.0.0.1"), ("１０.0.0.1", "10.0.0.1"),
    ("0xA9.0xFE.0xA9.0xFE", "169.254.169.254"), ("127.0.0.1.", "127.0.0.1"),
    ("Example.COM", "example.com"), ("a.0x7f.b", "a.0x7f.b"),
])
def test_hosts_are_read_as_a_browser_reads_them(host: str, address: str) -> None:
    assert normalize_host(host) == address


@pytest.mark.parametrize("host", ["1.2.3.4.5", "256.0.0.1", "08.0.0.1", "1.2.3.09",
                                  "4294967296", "a.b.1"])
def test_hosts_that_look_like_ipv4_but_are_not_are_refused(host: str) -> None:
    with pytest.raises(FetchError, match="not a valid IPv4 address"):
        normalize_host(host)


def test_the_guard_never_asks_dns_about_an_ipv4_spelling() -> None:
    asked: list[str] = []
    guard = AddressGuard(resolver=lambda h, p: asked.append(h) or ["93.184.215.14"])
    for host in ("0177.0.0.1", "0xA9.0xFE.0xA9.0xFE", "①②⑦.1"):
        with pytest.raises(SSRFBlocked):
            guard.resolve(host, 80)
    assert asked == []
