"""Showing user-supplied text safely: the one escaping rule for everything scalekit prints.

A spec name, a path, a field name or a value in an error message can hold anything a YAML string
or a command line can: ESC sequences (CSI colours, OSC set-title or hyperlinks), carriage
returns that overwrite a line, newlines that start a fake one, bidirectional overrides that
reorder what is shown, lone surrogates that no encoder accepts. :func:`safe_text` makes every
such character visible as an escape (``\\x1b``, ``\\n``, ``\\u202e``, ``\\udcff``) and leaves the rest
alone, so the text reads the same, stays on one line and is never interpreted by a terminal.

Rich markup is the other half: scalekit's consoles never parse markup, emoji codes or
highlighting in the text they print (report/tables.py, ``safe_console``), so ``[/bold]`` or
``[link=...]`` in a name is shown as typed.

No torch, no rich, no click here.
"""

from __future__ import annotations

import re
from typing import Any

# C0 controls, DEL, C1 controls; Unicode line and paragraph separators; bidirectional marks,
# embeddings, overrides and isolates; lone surrogates (from a YAML "\udcff" escape or an argv
# byte that is not UTF-8)
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e"
                     "\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(m: re.Match) -> str:
    c = m.group()
    if c in _NAMED:
        return _NAMED[c]
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}"


def safe_text(value: Any) -> str:
    """``value`` as text that a terminal shows and never interprets: control characters,
    bidirectional overrides and lone surrogates become visible escapes; the result is one line.
    Backslashes are kept as they are (a Windows path reads as typed)."""
    s = value if isinstance(value, str) else str(value)
    return _UNSAFE.sub(_escape, s) if _UNSAFE.search(s) else s


def is_safe(value: str) -> bool:
    """Whether ``value`` would be shown unchanged by :func:`safe_text`."""
    return _UNSAFE.search(value) is None


__all__ = ["is_safe", "safe_text"]


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 model``, ``2 models``, ``0 models``, ``1,204 networks``: a count and its noun, singular
    only for one (``words``: an irregular plural)."""
    return f"{n:,} {word if n == 1 else words or word + 's'}"
