"""Text that is safe to print and to align: display widths and control-character escaping.

Workload names, HTTP paths and Hubble lines come from users' manifests and from the cluster, so
before they reach a terminal they are made *printable*: a control character (an ANSI escape, a
carriage return, a bidi override) would otherwise repaint or reorder the CI log. Alignment pads by
*display width*, not by ``len``: an East Asian wide character takes two terminal columns, a
combining mark none. Characters whose width is "ambiguous" are counted as one column, as western
terminals and CI log viewers draw them.
"""

from __future__ import annotations

import unicodedata

_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def printable(text: str) -> str:
    """``text`` with every control/format/unassigned character written as a ``\\x..``/``\\u....`` escape."""
    if text.isascii() and text.isprintable():
        return text
    out: list[str] = []
    for char in text:
        if unicodedata.category(char) in _ESCAPED_CATEGORIES:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)


def char_width(char: str) -> int:
    """Terminal columns one character takes: 0 for combining marks, 2 for wide/fullwidth, else 1."""
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes (after ``printable``; ANSI escapes are not expected here)."""
    if text.isascii():
        return len(text)
    return sum(char_width(c) for c in text)


def pad(text: str, width: int) -> str:
    """``text`` followed by spaces up to ``width`` display columns."""
    return text + " " * max(0, width - display_width(text))

