"""HTML -> :class:`~branchgym.envs.types.Page` in one linear pass (the browse tool's extraction).

lxml's HTML parser (libxml2) feeds a small tree builder; three walks over that tree collect the
title and links, render tables as ``cell | cell`` rows, and write the visible text with one line
per block element. Nothing is ever inserted into or removed from a tree, so time and memory grow
linearly with the page (the BeautifulSoup version this replaced edited the tree once per block
element, which is quadratic: 20,000 ``<p>`` took 30 s). The output is the same as that
version's for every page of the offline world and a few thousand generated hostile pages
(``tests/envs/tools/test_browse.py`` keeps the comparison).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

from branchgym.envs.types import Page

__all__ = ["html_to_page", "DEFAULT_MAX_ELEMENTS"]

_DROP = ("script", "style", "noscript", "template", "svg", "iframe", "object", "head")
_BLOCK = ("p", "div", "section", "article", "main", "header", "footer", "nav", "aside", "ul",
          "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "form", "dl",
          "dt", "dd", "figure", "figcaption", "address", "hr", "caption", "tr", "table")

#: Strings inside these tags are not page text (BeautifulSoup's string containers).
_CONTAINERS = frozenset({"rt", "rp", "style", "script", "template"})
_PRESERVE = frozenset({"pre", "textarea"})  # whitespace-only strings kept as they are
_ASCII_SPACE = frozenset(" \n\t\x0c\r")
_DROP_SET, _BLOCK_SET = frozenset(_DROP), frozenset(_BLOCK)
#: Elements read from one page; the rest is left out with a note (a normal page has < 50,000).
DEFAULT_MAX_ELEMENTS = 200_000


class _Node:
    __slots__ = ("tag", "href", "children")

    def __init__(self, tag: str, href: str | None) -> None:
        self.tag, self.href = tag, href
        self.children: list[_Node | str] = []


class _TreeBuilder:
    """lxml parser target that builds a small tree of elements and *text* strings.

    It follows BeautifulSoup's rules for strings so the text matches what the BeautifulSoup
    version of :func:`html_to_page` gave: data between two tags is one string; a string of
    ASCII whitespace only becomes one newline or one space (except inside ``<pre>`` and
    ``<textarea>``); comments, processing instructions, the doctype and strings inside
    ``<script>``, ``<style>``, ``<template>``, ``<rt>`` and ``<rp>`` are not text; an end tag
    closes the innermost open element of that name (and everything inside it).
    """

    def __init__(self, max_elements: int) -> None:
        self.root = _Node("[document]", None)
        self.stack = [self.root]
        self.open: dict[str, int] = {}
        self.buf: list[str] = []
        self.containers = self.preserve = self.elements = 0
        self.max_elements = max_elements
        self.cut = False

    def _flush(self) -> None:
        if not self.buf:
            return
        text = "".join(self.buf)
        self.buf = []
        if not self.preserve and all(ch in _ASCII_SPACE for ch in text):
            text = "\n" if "\n" in text else " "
        if not self.containers:
            self.stack[-1].children.append(text)

    def start(self, tag: str, attrib: Any, nsmap: Any = None) -> None:
        if self.cut:
            return
        self._flush()
        self.elements += 1
        if self.elements > self.max_elements:
            self.cut = True
            return
        node = _Node(tag, attrib.get("href") if tag in ("a", "base") else None)
        self.stack[-1].children.append(node)
        self.stack.append(node)
        self.open[tag] = self.open.get(tag, 0) + 1
        self.containers += tag in _CONTAINERS
        self.preserve += tag in _PRESERVE

    def _pop(self) -> str:
        tag = self.stack.pop().tag
        self.open[tag] -= 1
        self.containers -= tag in _CONTAINERS
        self.preserve -= tag in _PRESERVE
        return tag

    def end(self, tag: str) -> None:
        if self.cut:
            return
        self._flush()
        if self.open.get(tag):
            while self._pop() != tag:
                pass

    def data(self, text: str) -> None:
        if not self.cut:
            self.buf.append(text)
            if len(self.buf) > 256:  # libxml2 sends some characters one by one (U+FFFD for NUL)
                self.buf[:] = ["".join(self.buf)]

    def comment(self, text: str) -> None:
        if not self.cut:
            self._flush()

    def pi(self, target: str, data: str) -> None:
        self.comment(data)

    def doctype(self, *args: Any) -> None:
        self.comment("")

    def close(self) -> _Node:
        if not self.cut:
            self._flush()
        return self.root


def _parse(html: str, max_elements: int) -> tuple[_Node, bool]:
    from lxml import etree

    if html[:1] == "\ufeff":
        html = html[1:]
    for markup, encoding in ((html, None), (html.encode("utf-8", "surrogatepass"), "utf8")):
        builder = _TreeBuilder(max_elements)
        parser = etree.HTMLParser(target=builder, recover=True, encoding=encoding)
        try:
            parser.feed(markup)
            return parser.close(), builder.cut
        except (UnicodeError, LookupError, etree.ParserError):
            continue
    return _Node("[document]", None), False


def _walk(root: _Node) -> Iterator[Any]:
    """Pre-order walk: yields ``(node, True)`` on entering an element, ``(node, False)`` on
    leaving it, and each string."""
    stack: list[Any] = [iter(root.children)]
    path: list[_Node] = []
    while stack:
        for child in stack[-1]:
            if isinstance(child, str):
                yield child
            else:
                yield child, True
                path.append(child)
                stack.append(iter(child.children))
                break
        else:
            stack.pop()
            if path:
                yield path.pop(), False


def _words(strings: list[str]) -> str:
    return " ".join(" ".join(strings).split())


def _table_text(table: _Node, done: dict[int, str]) -> str:
    """A table as ``cell | cell`` rows; ``done`` holds the text of the tables inside it.

    A row is every ``td``/``th`` inside a ``tr`` (tables inside count as their text); text
    outside rows and rows with only empty cells are left out.
    """
    atoms: list[str] = []
    rows: list[list[tuple[int, int]]] = []  # per tr: (first atom, end atom) of each cell
    open_rows: list[int] = []  # indexes into rows
    open_cells: list[tuple[int, list[tuple[int, int]]]] = []  # first atom, (row, slot) pairs
    stack: list[Any] = [iter(table.children)]
    path: list[_Node] = []
    while stack:
        for child in stack[-1]:
            if isinstance(child, str):
                atoms.append(child)
            elif child.tag in _DROP_SET:
                continue
            elif child.tag == "table":
                atoms.append(done[id(child)])
            else:
                if child.tag == "tr":
                    open_rows.append(len(rows))
                    rows.append([])
                elif child.tag in ("td", "th"):
                    slots = []
                    for r in open_rows:
                        slots.append((r, len(rows[r])))
                        rows[r].append((0, 0))
                    open_cells.append((len(atoms), slots))
                path.append(child)
                stack.append(iter(child.children))
                break
        else:
            stack.pop()
            if not path:
                continue
            tag = path.pop().tag
            if tag == "tr":
                open_rows.pop()
            elif tag in ("td", "th"):
                first, slots = open_cells.pop()
                for r, slot in slots:
                    rows[r][slot] = (first, len(atoms))
    lines = []
    for row in rows:
        texts = [_words(atoms[a:b]) for a, b in row]
        if any(texts):
            lines.append(" | ".join(texts))
    return "\n" + "\n".join(lines) + "\n"


def html_to_page(url: str, html: str | bytes, status: int = 200, *,
                 max_elements: int = DEFAULT_MAX_ELEMENTS) -> Page:
    """Parse HTML into a :class:`~branchgym.envs.types.Page` (lxml, one linear pass).

    - ``title``: ``<title>``, else the first ``<h1>``, else the URL;
    - ``text``: visible text, one line per block element, list items prefixed ``- ``, table rows
      as ``cell | cell | cell``; scripts, styles and ``<head>`` dropped;
    - ``links``: ``(anchor text, absolute URL)`` for every http(s) ``<a href>``, fragments
      removed, duplicates dropped, document order.

    Time and memory grow linearly with the page. Only the first ``max_elements`` elements are
    read; a page with more ends with the line ``[page cut after N elements]``.

    >>> p = html_to_page("https://a.example/x/", '<title>T</title><p>Hi <a href="../y">Y</a></p>'
    ...                  '<table><tr><td>1</td><td>2</td></tr></table>')
    >>> p.title, p.text, p.links
    ('T', 'Hi Y\\n1 | 2', (('Y', 'https://a.example/y'),))
    """
    if isinstance(html, bytes):
        html = html.decode("utf-8", "replace")
    root, cut = _parse(html, max_elements)
    strings: list[str] = []  # every text string, in document order
    spans: dict[int, int] = {}  # id(open element) -> index of its first string
    firsts: dict[str, int] = {}  # "title"/"h1" -> id of the first one in document order
    found: dict[str, tuple[int, int]] = {}
    base_href: str | None = None
    anchors: list[tuple[int, str, int, int]] = []  # (document position, href, first, end)
    position: dict[int, int] = {}
    tables: list[_Node] = []
    for item in _walk(root):
        if isinstance(item, str):
            strings.append(item)
            continue
        node, entering = item
        if entering:
            spans[id(node)] = len(strings)
            if node.tag == "table":
                tables.append(node)
            elif node.tag == "a" and node.href is not None:
                position[id(node)] = len(position) + len(anchors)
            elif node.tag in ("title", "h1"):
                firsts.setdefault(node.tag, id(node))
            elif node.tag == "base" and base_href is None and node.href is not None:
                base_href = node.href
            continue
        first = spans.pop(id(node))
        if node.tag == "a" and node.href is not None:
            anchors.append((position.pop(id(node)), node.href, first, len(strings)))
        elif firsts.get(node.tag) == id(node):
            found[node.tag] = (first, len(strings))
    title = _words(strings[slice(*found["title"])]) if "title" in found else ""
    if not title and "h1" in found:
        title = _words(strings[slice(*found["h1"])])
    base = url
    if base_href is not None:
        with contextlib.suppress(ValueError):  # a malformed <base href> is ignored
            base = urljoin(url, base_href)
    links: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    anchors.sort()  # document order (an anchor inside another one closes first)
    for _, href, first, last in anchors:
        href = href.strip()
        if not href or href.startswith(("#", "javascript:", "mailto:", "tel:", "data:")):
            continue
        try:
            absolute = urldefrag(urljoin(base, href))[0]
        except ValueError:
            continue  # malformed href (e.g. bad IPv6 literal): not clickable
        if urlsplit(absolute).scheme not in ("http", "https"):
            continue
        anchor = _words(strings[first:last]) or absolute
        if (anchor, absolute) not in seen:
            seen.add((anchor, absolute))
            links.append((anchor, absolute))
    done: dict[int, str] = {}
    for table in reversed(tables):  # innermost first
        done[id(table)] = _table_text(table, done)
    text = _visible_text(root, done)
    if cut:
        text += f"\n[page cut after {max_elements} elements]"
    return Page(url=url, title=title or url, text=text, links=tuple(links), status=status)


def _visible_text(root: _Node, tables: dict[int, str]) -> str:
    """The page text: dropped elements left out, tables as rows, one line per block."""
    out: list[str] = []
    stack: list[Any] = [iter(root.children)]
    path: list[_Node] = []
    while stack:
        for child in stack[-1]:
            if isinstance(child, str):
                out.append(child)
            elif child.tag in _DROP_SET:
                continue
            elif child.tag == "table":
                out.append(tables[id(child)])
            elif child.tag == "br":
                out.append("\n")
            else:
                if child.tag in _BLOCK_SET:
                    out.append("\n- " if child.tag == "li" else "\n")
                path.append(child)
                stack.append(iter(child.children))
                break
        else:
            stack.pop()
            if path and path.pop().tag in _BLOCK_SET:
                out.append("\n")
    lines = [" ".join(line.split()) for line in "".join(out).splitlines()]
    return "\n".join(line for line in lines if line and line != "-")
