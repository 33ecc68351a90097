"""HTML pages for the ``html_to_page`` golden comparison (see ``test_browse.py``).

``data/html_golden.json`` holds a digest of ``html_to_page``'s output for every page here and
for every page of the offline world (seed 0, 2,000 articles). The digests were recorded with the
BeautifulSoup implementation that the linear single-pass one replaced, so any change in output
for these pages shows up as a failing test. Regenerate (only when an output change is intended)
with ``python3 tests/envs/tools/_browse_html_cases.py`` (from the repository root).
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

GOLDEN = Path(__file__).parent / "data" / "html_golden.json"

EDGE_CASES: dict[str, str] = {
    "ruby": "<p>漢<ruby>字<rt>ji</rt><rp>(</rp></ruby> end</p>",
    "pre-whitespace": "<pre>  a\n\n  b\x0c</pre><span>x</span>\x0c<span>y</span>",
    "form-feed-between-inline": "<b>a</b>\x0c<b>b</b> <i>c</i>\r<i>d</i>",
    "comments-and-pi": "<p>a<!-- hidden -->b<?php echo 1 ?>c</p><!DOCTYPE x>",
    "td-outside-tr": "<table><td>lonely</td><caption>cap</caption><tr><td></td></tr></table>t",
    "nested-tables": "<table><tr><td>1<table><tr><td>2<table><tr><th>3</th></tr></table>"
                     "</td></tr></table></td><td>4</td></tr></table>",
    "script-in-anchor": '<a href="/a">x<script>var s</script><style>p{}</style>y</a>',
    "anchor-in-head": '<html><head><a href="/h">head link</a><title>T</title></head>'
                      '<body>b</body></html>',
    "title-in-svg": '<body><svg><title>svg title</title></svg><p>text</p></body>',
    "empty-title-h1": "<title>  </title><h1> Head <b>one</b></h1>",
    "base-empty": '<base href=""><a href="x">x</a>',
    "base-twice": '<base href="/one/"><base href="/two/"><a href="x">x</a>',
    "li-and-dash": "<ul><li></li><li>-</li><li>item <ol><li>inner</li></ol></li></ul>",
    "br-in-cell": "<table><tr><td>a<br>b</td><td><p>c</p><div>d</div></td></tr></table>",
    "drop-in-cell": "<table><tr><td>a<script>x</script><noscript>n</noscript>b</td></tr></table>",
    "entities": "<p>&amp; &lt;tag&gt; &nbsp;&nbsp; &#x2028; &copy; &bogus;</p>",
    "unicode-lines": "<p>a\u2028b\u2029c\x85d\x1ce\x0bf</p>",
    "duplicate-links": '<a href="/x">A</a><a href="/x#f">A</a><a href="/x">B</a>'
                       '<a href=" /y ">  </a><a href="ftp://z">ftp</a><a href="data:x">d</a>',
    "hr-and-headings": "<h2>h</h2>text<hr>more<h6>six</h6>tail",
    "textarea": "<textarea>  \n  </textarea><p>p</p>",
    "template": "<template><p>tpl</p></template><p>visible</p>",
    "iframe-object": "<iframe>if</iframe><object>ob</object><p>v</p>",
    "stray-end-tags": "</p></div>text</table></tr>more</b>",
    "deep-inline": "<b><i><u><s>" * 50 + "deep" + "</s></u></i></b>" * 50,
    "bom": "\ufeff<title>bom</title><p>x</p>",
    "xml-decl": '<?xml version="1.0" encoding="utf-8"?><html><body><p>x</p></body></html>',
    "nul": "<p>a\x00b</p>",
    "dl": "<dl><dt>term</dt><dd>def <a href='/d'>link</a></dd></dl>",
    "tr-outside-table": "<tr><td>x</td></tr><p>y</p>",
    "table-in-rt": "<ruby>a<rt><table><tr><td>t</td></tr></table></rt></ruby>",
    "cdata": "<p><![CDATA[ data ]]>after</p>",
    "whitespace-only": " \n\t ",
    "empty": "",
}

_TOKENS = [
    "<p>", "</p>", "<div>", "</div>", "<li>", "</li>", "<ul>", "</ul>", "<table>", "</table>",
    "<tr>", "</tr>", "<td>", "</td>", "<th>", "</th>", "<br>", "<br/>", "<b>", "</b>", "<span>",
    "</span>", "<script>", "</script>", "<style>", "</style>", "<noscript>", "</noscript>",
    "<title>", "</title>", "<h1>", "</h1>", "<pre>", "</pre>", "<rt>", "</rt>", "<head>",
    "</head>", "<svg>", "</svg>", "<a href='/l'>", "<a href='https://e.example/#x'>", "</a>",
    "<base href='/b/'>", "<!-- c -->", "<caption>", "</caption>", "<hr>", "<template>",
    "</template>", "word", "two words", " ", "\n", "\t", "\x0c", "\r\n", "\xa0", "&amp;",
    "&lt;", "<", ">", "&", "中文", "-", " - ", "|", "<?pi x?>", "<![CDATA[x]]>", "\u2028",
]


def fuzz_pages(n: int = 400, seed: int = 11) -> dict[str, str]:
    rng = random.Random(seed)
    return {f"fuzz-{i}": "".join(rng.choice(_TOKENS) for _ in range(rng.randint(0, 120)))
            for i in range(n)}


def digest(page) -> str:  # type: ignore[no-untyped-def]
    data = json.dumps([page.title, page.text, [list(x) for x in page.links]], ensure_ascii=True)
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def all_cases(world) -> dict[str, tuple[str, str]]:  # type: ignore[no-untyped-def]
    """name -> (url, html)."""
    cases = {name: ("https://a.example/dir/page", html)
             for name, html in {**EDGE_CASES, **fuzz_pages()}.items()}
    for i, url in enumerate(world.urls):  # keyed by position (URLs make the file twice as big)
        cases[f"world-{i}"] = (url, world.html(url))
    return cases


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from branchgym.envs.tools.browse import html_to_page
    from branchgym.envs.world import World

    w = World.generate(seed=0, n_articles=2000)
    pages = {name: html_to_page(url, html) for name, (url, html) in all_cases(w).items()}
    out = {name: digest(page) for name, page in pages.items()}
    if len(sys.argv) > 1:  # also dump the full outputs, to compare by eye
        Path(sys.argv[1]).write_text(json.dumps({n: [p.title, p.text, p.links]
                                                 for n, p in pages.items()}))
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(out, indent=0, sort_keys=True) + "\n")
    print(f"wrote {len(out)} digests to {GOLDEN}")
