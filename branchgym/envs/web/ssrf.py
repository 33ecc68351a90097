"""SSRF guard: which network addresses a real-web fetch may connect to.

A fetch of an agent-chosen URL must never reach the machine's own services, the private network
or a cloud metadata endpoint. The guard works on *resolved addresses*: the fetcher resolves the
host once, checks every address (:meth:`AddressGuard.resolve`), and connects to a checked
address, so a DNS answer that changes between check and connect (DNS rebinding) cannot slip
through. Redirects are followed by hand and every hop goes through the same check.

Refused: loopback, private (RFC 1918), link-local, CGNAT (100.64/10), multicast, unspecified,
reserved/benchmarking/documentation ranges (anything Python's ``ipaddress`` does not call
global), IPv6 ULA (fc00::/7) and link-local, IPv4-mapped/translated IPv6 addresses, and the cloud
metadata endpoints (169.254.169.254, fd00:ec2::254, ``metadata.google.internal``).

Host spellings: :func:`normalize_host` reads a host as a browser does (WHATWG URL standard):
Unicode compatibility forms are folded (``①②⑦`` and full-width digits are ``127``), and a host
whose last label is a number is an IPv4 address in any of the legacy forms (``0177.0.0.1``,
``0x7f.1``, ``2130706433``, ``127.000.000.001``) and is rewritten to dotted decimal, or refused
when it is not a valid address (``1.2.3.4.5``, ``256.0.0.1``, ``08.0.0.1``). The fetcher
requests the normalised URL, so the address checked is the one connected to.

Tests that serve pages on loopback pass an explicit allowlist, e.g.
``AddressGuard(allow=("127.0.0.0/8",))``.
"""

from __future__ import annotations

import ipaddress
import socket
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from branchgym.errors import ConfigError, FetchError, SSRFBlocked

__all__ = [
    "METADATA_HOSTS",
    "METADATA_ADDRESSES",
    "Resolver",
    "AddressGuard",
    "blocked_reason",
    "system_resolver",
    "parse_allow",
    "normalize_host",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``resolver(host, port) -> addresses`` (strings); injectable so tests can fake DNS answers.
Resolver = Callable[[str, int], Sequence[str]]

METADATA_HOSTS: frozenset[str] = frozenset(
    {
        "metadata.google.internal",
        "metadata.goog",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.internal",
    }
)
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack
        ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
        ipaddress.ip_address("fd00:ec2::254"),  # AWS IMDS over IPv6
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    }
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def blocked_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be fetched from, or ``None`` when it is a public address.

    >>> blocked_reason(ipaddress.ip_address("10.1.2.3"))
    'private'
    >>> blocked_reason(ipaddress.ip_address("93.184.215.14")) is None
    True
    """
    if ip in METADATA_ADDRESSES:
        return "cloud metadata"
    if isinstance(ip, ipaddress.IPv6Address):
        # Addresses that embed an IPv4 address are judged as that address, and refused anyway:
        # a dual-stack socket would reach the embedded IPv4 host.
        if ip.ipv4_mapped is not None:
            inner = blocked_reason(ip.ipv4_mapped)
            return f"IPv4-mapped IPv6 ({inner or 'mapped'})"
        if ip in _NAT64:
            return "NAT64-translated IPv6"
        if ip.sixtofour is not None and blocked_reason(ip.sixtofour):
            return "6to4 IPv6 embedding a non-public IPv4 address"
        if ip.is_site_local or ip in ipaddress.ip_network("fc00::/7"):
            return "IPv6 unique-local"
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "carrier-grade NAT"
    if ip.is_private:
        return "private"
    if ip.is_reserved or not ip.is_global:
        return "reserved (not globally routable)"
    return None


def _ipv4_number(part: str) -> int | None:
    """One part of a WHATWG IPv4 host: decimal, ``0``-prefixed octal or ``0x`` hex."""
    base = 10
    if part[:2] in ("0x", "0X"):
        part, base = part[2:], 16
    elif len(part) > 1 and part[0] == "0":
        part, base = part[1:], 8
    if not part:
        return 0
    digits = "0123456789abcdef"[:base]
    if any(ch not in digits for ch in part.lower()):
        return None
    return int(part, base)


def _ends_in_number(labels: list[str]) -> bool:
    last = labels[-1]
    if last and all(ch in "0123456789" for ch in last):
        return True
    return last[:2] in ("0x", "0X") and all(ch in "0123456789abcdefABCDEF" for ch in last[2:])


def normalize_host(host: str) -> str:
    """The host as a browser reads it; IPv4 in any legacy spelling becomes dotted decimal.

    Raises :class:`FetchError` for a host that looks like an IPv4 address but is not one.

    >>> normalize_host("0177.0.0.1"), normalize_host("0x7f.1"), normalize_host("①②⑦.0.0.1")
    ('127.0.0.1', '127.0.0.1', '127.0.0.1')
    >>> normalize_host("Example.COM")
    'example.com'
    """
    if host.startswith("["):
        return host.lower()  # IPv6 literal: ipaddress parses it strictly
    name = unicodedata.normalize("NFKC", host).lower()
    for dot in ("\u3002", "\uff0e", "\uff61"):  # ideographic / full-width full stops
        name = name.replace(dot, ".")
    labels = name.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels = labels[:-1]  # one trailing dot is the root: "127.0.0.1." is 127.0.0.1
    if not labels or not _ends_in_number(labels):
        return name
    numbers = [_ipv4_number(p) if p else None for p in labels]
    bad = f"{host!r} is not a valid IPv4 address (its last label is a number)"
    if len(labels) > 4 or any(n is None for n in numbers):
        raise FetchError(f"cannot fetch from host {bad}; write the address as a.b.c.d")
    nums = [n for n in numbers if n is not None]
    if any(n > 255 for n in nums[:-1]) or nums[-1] >= 256 ** (5 - len(nums)):
        raise FetchError(f"cannot fetch from host {bad}: a part is out of range; write the "
                         "address as a.b.c.d with each part 0-255")
    value = nums[-1] + sum(n << (8 * (3 - i)) for i, n in enumerate(nums[:-1]))
    return str(ipaddress.IPv4Address(value))


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the OS resolver (``getaddrinfo``), every address family."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise OSError(f"cannot resolve host {host!r}: {exc}") from exc
    seen: list[str] = []
    for info in infos:
        addr = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone id
        if addr not in seen:
            seen.append(addr)
    return seen


@dataclass(frozen=True)
class AddressGuard:
    """Checks hosts and resolved addresses before a connection is made.

    Args:
        allow: networks (CIDR strings) that are permitted even though they are not public,
            e.g. ``("127.0.0.0/8",)`` for tests against a loopback server. Use sparingly.
        resolver: ``resolver(host, port) -> [address, ...]``; default: the OS resolver.
        blocked_hosts: host names refused before any resolution (metadata names by default).
    """

    allow: tuple[str, ...] = ()
    resolver: Resolver = field(default=system_resolver, compare=False)
    blocked_hosts: frozenset[str] = METADATA_HOSTS
    _allowed: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if isinstance(self.allow, str):
            raise ConfigError(
                f"allow must be a tuple of CIDR strings, got the string {self.allow!r}; "
                f"write allow=({self.allow!r},)"
            )
        nets = []
        for item in self.allow:
            try:
                nets.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ConfigError(
                    f"allow entry {item!r} is not an IP network; use CIDR such as '127.0.0.0/8'"
                ) from None
        object.__setattr__(self, "allow", tuple(self.allow))
        object.__setattr__(self, "_allowed", tuple(nets))

    def is_allowed(self, ip: IPAddress) -> bool:
        """True when ``ip`` is public or inside an ``allow`` network."""
        if any(ip.version == net.version and ip in net for net in self._allowed):
            return True
        return blocked_reason(ip) is None

    def check_address(self, address: str, *, host: str = "") -> IPAddress:
        """Parse and check one address; raise :class:`SSRFBlocked` when it is refused."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            raise SSRFBlocked(f"resolver returned a non-IP address {address!r}") from None
        if not self.is_allowed(ip):
            via = f" (host {host!r} resolves to it)" if host and host != address else ""
            raise SSRFBlocked(
                f"refusing to connect to {ip}{via}: {blocked_reason(ip)} address. The web "
                "fetcher only reaches public addresses; for a test server pass "
                "allow=('127.0.0.0/8',) to the fetcher."
            )
        return ip

    def check_host(self, host: str) -> None:
        """Name-based refusal (metadata host names), before any DNS lookup."""
        name = unicodedata.normalize("NFKC", host.strip("[]")).rstrip(".").lower()
        if name in self.blocked_hosts:
            raise SSRFBlocked(f"refusing to fetch from {host!r}: cloud metadata host name")

    def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Resolve ``host`` once and check **every** address; return them in resolver order.

        One refused address refuses the host: a name that resolves to a public and a private
        address is exactly what a rebinding attack looks like.
        """
        self.check_host(host)
        # the host as a browser reads it: "0177.0.0.1" and "①②⑦.0.0.1" are 127.0.0.1 here too,
        # whatever a resolver would make of them
        bare = host.strip("[]") if host.startswith("[") else normalize_host(host)
        try:
            literal = ipaddress.ip_address(bare.split("%", 1)[0])
        except ValueError:
            literal = None
        if literal is not None:
            return [self.check_address(str(literal), host=host)]
        try:
            addresses = list(self.resolver(bare, port))
        except OSError as exc:
            raise FetchError(f"DNS lookup failed for {host!r}: {exc}") from exc
        if not addresses:
            raise FetchError(f"DNS lookup for {host!r} returned no address")
        return [self.check_address(a, host=host) for a in addresses]


def parse_allow(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """Accept ``"a,b"`` or an iterable of CIDR strings (for env vars and CLI options)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(value)
