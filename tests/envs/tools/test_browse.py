"""Browse tool: HTML -> text (general pages), the world fetcher, goal windows, summariser,
and robustness to adversarial arguments."""

from __future__ import annotations

import doctest

import random

import pytest

from branchgym.envs.registries import FETCHERS
from branchgym.envs.tools.browse import BrowseTool, WorldFetcher, best_window, html_to_page
from branchgym.envs.types import Page, PageFetcher
from branchgym.envs.world import World
from branchgym.envs.world.source import OfflineTaskSource
from branchgym.errors import ConfigError, FetchError

HTML = """<!DOCTYPE html><html><head><title> Harbour  news </title>
<style>body{color:red}</style><script>var secret = 1;</script></head>
<body><nav><ul><li><a href="/">Home</a></li>
<li><a href="news/page-2.html#top">More</a></li></ul></nav>
<h1>Latest</h1><p>First <b>bold</b> line.<br>Second line.</p>
<table><tr><th>Year</th><th>Cargo</th></tr><tr><td>2019</td><td> 4 520 </td></tr>
<tr><td>2020</td><td><table><tr><td>in</td><td>ner</td></tr></table></td></tr></table>
<a href="javascript:alert(1)">js</a><a href="mailto:x@y.example">mail</a><a href="#frag">f</a>
<a href="https://other.example/a?b=1">Other</a><a href="/">Home</a><noscript>hidden</noscript>
</body></html>"""


def test_html_to_page_general_structure():
    p = html_to_page("https://harbour.example/news/index.html", HTML)
    assert p.title == "Harbour news"
    assert "secret" not in p.text and "color" not in p.text and "hidden" not in p.text
    lines = p.text.split("\n")
    assert "First bold line." in lines and "Second line." in lines
    assert "- Home" in lines and "Latest" in lines
    assert "Year | Cargo" in lines and "2019 | 4 520" in lines
    assert "2020 | in | ner" in lines  # the nested table is flattened into its cell
    assert p.links == (
        ("Home", "https://harbour.example/"),
        ("More", "https://harbour.example/news/news/page-2.html"),
        ("Other", "https://other.example/a?b=1"),
    )


def test_html_to_page_edge_cases():
    p = html_to_page("https://a.example/x/y", b"<html><head><base href='/root/'></head>"
                     b"<body><h1>Only heading</h1><a href='z'>z</a></body></html>")
    assert p.title == "Only heading" and p.links == (("z", "https://a.example/root/z"),)
    broken = html_to_page("https://a.example/", "<p>unclosed <div><b>text")
    assert "unclosed" in broken.text and broken.title == "https://a.example/"
    empty = html_to_page("https://a.example/", "")
    assert empty.text == "" and empty.links == ()
    weird = html_to_page("https://a.example/", '<a href="http://[::1">bad</a><a href="">e</a>')
    assert weird.links == ()


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return World.generate(seed=0, n_articles=2000,
                          cache_dir=tmp_path_factory.getbasetemp() / "world-cache")


def test_world_fetcher_serves_sites_and_wiki(world):
    f = WorldFetcher(world)
    assert isinstance(f, PageFetcher)
    root = f.fetch("https://harbour.example")
    assert root.url == "https://harbour.example/" and "Fleet register" in root.text
    assert f.fetch("http://harbour.example/#x").url == "https://harbour.example/"
    a = world.articles[3]
    wiki = f.fetch(a["url"])
    assert wiki.title.startswith(a["title"]) and a["text"] in wiki.text
    with pytest.raises(FetchError, match="404"):
        f.fetch("https://harbour.example/fleet/nope.html")


def test_browse_output_lists_text_and_links(world):
    tool = BrowseTool(WorldFetcher(world))
    out = tool.call("https://census.example/")
    assert out.ok
    assert out.text.startswith("Title: Office of Regional Statistics")
    assert "URL: https://census.example/" in out.text
    assert "Links:\n- Home: https://census.example/" in out.text
    assert "- Regions: https://census.example/regions/index.html" in out.text
    bare = tool.call("census.example/regions/index.html")
    assert bare.ok and "URL: https://census.example/regions/index.html" in bare.text


class _LongPage:
    """A PageFetcher with one long page (for windowing and truncation)."""

    def __init__(self) -> None:
        filler = " ".join(f"Filler sentence number {i} about nothing." for i in range(800))
        self.text = filler + " The secret launch code of the Varnel ship is 4471. " + filler

    def fetch(self, url: str) -> Page:
        return Page(url=url, title="Long", text=self.text, links=(("next", url + "?p=2"),))


def test_goal_window_and_truncation():
    tool = BrowseTool(_LongPage(), max_chars=2000, window_chars=300)
    plain = tool.call("https://long.example/")
    assert "4471" not in plain.text and "text cut at 2000" in plain.text
    focused = tool.call("https://long.example/ | launch code of the Varnel ship")
    assert "4471" in focused.text and "text cut" not in focused.text
    assert len(focused.text) < 1200
    miss = tool.call("https://long.example/ | zebra quantum")
    assert "nothing on this page matches" in miss.text
    window, matched = best_window("a b. Oslo is cold. c d.", "is Oslo cold", 2)
    assert matched and "Oslo is cold." in window


def test_summarizer_is_called_and_may_fail():
    calls = []

    def summarize(text: str, goal: str) -> str:
        calls.append((len(text), goal))
        return f"SUMMARY for {goal}"

    tool = BrowseTool(_LongPage(), summarizer=summarize)
    out = tool.call("https://long.example/ | launch code")
    assert "SUMMARY for launch code" in out.text
    assert calls == [(len(_LongPage().text), "launch code")]
    assert tool.call("https://long.example/").text.count("Filler") > 10  # no goal: no summary

    def broken(text: str, goal: str) -> str:
        raise RuntimeError("judge server down")

    out = BrowseTool(_LongPage(), summarizer=broken).call("https://long.example/ | launch code")
    assert out.ok and "summarizer failed" in out.text and "4471" in out.text


def test_bad_arguments_are_helpful_outputs(world):
    tool = BrowseTool(WorldFetcher(world))
    for arg, needle in (("", "Empty browse call"), ("   ", "Empty browse call"),
                        ("not a url", "not a valid absolute"),
                        ("ftp://harbour.example/", "not a valid"),
                        ("https://nowhere.example/", "Could not open"),
                        ("https://harbour.example/missing", "404"),
                        ("https://" + "a" * 10**6, "characters long")):
        out = tool.call(arg)
        assert not out.ok and needle in out.text, (arg[:30], out.text[:200])


def test_never_raises_on_adversarial_input(world):
    rng = random.Random(2)
    tool = BrowseTool(WorldFetcher(world))
    pieces = ["https://", "http://", "harbour.example", "/fleet/", "page-1.html", "|", " ", "\x00",
              "\ud800", "[", "]", "::1", "%", "#", "?", "..", "中", "\n", "\\", "@", ":"]
    for i in range(1000):
        n = rng.choice((0, 1, 3, 8, 30)) if i % 200 else 100_000
        arg = "".join(rng.choice(pieces) for _ in range(n))
        out = tool.call(arg)
        assert isinstance(out.text, str) and out.text
        out.text.encode("utf-8")


def test_constructor_and_factory_validation(world):
    with pytest.raises(ConfigError, match="max_chars"):
        BrowseTool(WorldFetcher(world), max_chars=0)
    with pytest.raises(ConfigError, match="fetch"):
        BrowseTool(object())
    with pytest.raises(ConfigError, match="summarizer"):
        BrowseTool(WorldFetcher(world), summarizer="yes")
    src = OfflineTaskSource("browse", world)
    assert isinstance(FETCHERS.get("world")(src), WorldFetcher)
    with pytest.raises(ConfigError, match="offline task source"):
        FETCHERS.get("world")(None)


def test_docstring_examples():
    import branchgym.envs.tools.browse as module

    assert doctest.testmod(module).failed == 0


def test_html_text_docstring_examples():
    import branchgym.envs.tools.html_text as module

    assert doctest.testmod(module).failed == 0


def test_html_to_page_output_matches_the_recorded_golden_digests(world):
    # Digests recorded with the BeautifulSoup implementation the linear one replaced: every
    # offline-world page, edge cases (ruby, <pre>, comments, nested tables, ...) and 400
    # generated tag soups must give exactly the same title, text and links.
    import json

    from _browse_html_cases import GOLDEN, all_cases, digest

    golden = json.loads(GOLDEN.read_text())
    cases = all_cases(world)
    assert set(cases) == set(golden)
    wrong = [name for name, (url, html) in cases.items()
             if digest(html_to_page(url, html)) != golden[name]]
    assert wrong == [], f"{len(wrong)} pages changed, e.g. {wrong[:5]}"
