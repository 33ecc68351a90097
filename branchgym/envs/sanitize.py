"""Text from outside (web pages, search APIs, program output) made safe for a model and a terminal.

:func:`clean_text` is applied to every tool observation (``ToolEnv`` does it once for all
tools), to every search hit and fetched page, and to what ``render()`` prints:

- lone UTF-16 surrogates (a truncated emoji in a JSON answer) become U+FFFD, so the text always
  encodes as UTF-8 (tokenizers and SQLite refuse it otherwise);
- terminal escape sequences are removed: CSI (``ESC [ ... m`` colours, cursor moves, screen
  clears), OSC (``ESC ] ... BEL`` window titles, hyperlinks), their 8-bit forms and other
  ``ESC x`` pairs. They carry nothing a model can use and would act on a human's terminal;
- ``\\r\\n`` and lone ``\\r``, vertical tab and form feed become ``\\n``; every other C0/C1 control
  character (NUL, BEL, backspace, DEL, ...) is removed. Tabs and newlines stay.

``terminal=True`` (used by ``render``) also removes the bidirectional-override characters
(U+202A-U+202E, U+2066-U+2069), which can make printed text read differently from what it is.
Text with none of these characters is returned unchanged (one regex scan).
"""

from __future__ import annotations

import re

__all__ = ["clean_text"]

_SUSPECT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_ESCAPES = re.compile(
    "(?:\x1b\\[|\x9b)[0-?]*[ -/]*[@-~]?"  # CSI: parameters, intermediates, final byte
    "|(?:\x1b[\\]PX^_]|[\x90\x98\x9d-\x9f])[^\x07\x1b\x9c\n]{0,1024}(?:\x07|\x1b\\\\|\x9c)?"
    "|\x1b[ -/]*[0-~]?"  # two-character (and nF) escapes
)
_NEWLINES = re.compile("\r\n?|[\x0b\x0c]")
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f]")
_SURROGATES = re.compile("[\ud800-\udfff]")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")


def clean_text(text: str, *, terminal: bool = False) -> str:
    """``text`` without lone surrogates, escape sequences or control characters (see above).

    >>> clean_text("a\\x00b \\x1b[31mred\\x1b[0m \\ud83d!\\r\\n")
    'ab red \\ufffd!\\n'
    """
    if not isinstance(text, str):
        text = str(text)
    if _SUSPECT.search(text):
        text = _SURROGATES.sub("\ufffd", text)
        text = _ESCAPES.sub("", text)
        text = _NEWLINES.sub("\n", text)
        text = _CONTROLS.sub("", text)
    if terminal:
        text = _BIDI.sub("", text)
    return text
