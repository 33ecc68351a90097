"""Store keys and record checksums of the web store (:mod:`branchgym.envs.web.store`).

A key must never be shared by two requests a server may answer differently, and a checksum
covers everything a replay returns (table, key and value).
"""

from __future__ import annotations

import hashlib
import unicodedata
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["normalize_query", "normalize_url", "legacy_url_key", "record_checksum"]


def normalize_query(query: str) -> str:
    """The store key of a query: NFKC, lower case, inner whitespace collapsed.

    >>> normalize_query("  GAIA   Benchmark\\tauthors ")
    'gaia benchmark authors'
    """
    return " ".join(unicodedata.normalize("NFKC", query).lower().split())


def _netloc(parts: Any) -> str:
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"  # IPv6
    port = parts.port
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    userinfo = parts.netloc.rpartition("@")[0]
    return f"{userinfo}@{host}" if userinfo else host


def normalize_url(url: str) -> str:
    """The store key of a URL.

    Query parameters are ordered by name; repeated names keep their order and every parameter
    keeps its escapes, so two URLs a server may answer differently never share a key.

    >>> normalize_url("HTTPS://Example.COM:443/a?b=2&a=1#frag")
    'https://example.com/a?a=1&b=2'
    >>> normalize_url("http://e.com/?x=2&x=1&p=a%2Fb")
    'http://e.com/?p=a%2Fb&x=2&x=1'
    """
    parts = urlsplit(url.strip())
    fields = sorted(parts.query.split("&"), key=lambda f: f.partition("=")[0])  # stable
    query = "&".join(fields) if parts.query else ""
    return urlunsplit((parts.scheme.lower(), _netloc(parts), parts.path or "/", query, ""))


def legacy_url_key(url: str) -> str:
    """The page key of stores written before the query order and escapes were kept."""
    parts = urlsplit(url.strip())
    query = urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    host = (parts.hostname or "").lower()
    if parts.port and not ((parts.scheme.lower(), parts.port) in (("http", 80), ("https", 443))):
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme.lower(), host, parts.path or "/", query, ""))


def record_checksum(table: str, key: str, blob: str) -> str:
    """SHA-256 (hex) of one record: its table, key and JSON value."""
    data = f"{table}\n{key}\n{blob}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()
