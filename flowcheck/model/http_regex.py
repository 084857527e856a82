"""HTTP rule regexes in Envoy's dialect: RE2 syntax, matched against the whole value.

Cilium hands an HTTP rule's ``method``, ``path`` and ``host`` to Envoy as ``safe_regex`` header
matchers, and Envoy's safe_regex is Google RE2 with a full-string match (docs/semantics.md, "HTTP rules").
Python's ``re`` is another dialect, and the differences change verdicts: it reads the POSIX class in
``/v[[:digit:]]+`` as a nested set (matching ``/v:]``, not ``/v1``), it refuses RE2's ``\\pL`` and
``\\z``, and it accepts lookarounds, backreferences and atomic groups, which RE2 -- and Cilium's
policy sanitizer -- reject. So the patterns are compiled by RE2 itself (the ``google-re2``
bindings): a pattern RE2 refuses is a bad policy, and one it accepts matches what Envoy matches.

The bindings ship no type information; this module is the only one that touches them and gives
the rest of the model a typed, hashable ``HttpRegex``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import re2  # type: ignore[import-untyped]  # google-re2 ships neither py.typed nor stubs


class RegexError(ValueError):
    """RE2 refuses the pattern; the message is RE2's own (``invalid perl operator: (?=``)."""


def _options() -> Any:
    options = re2.Options()
    # RE2 logs every pattern it refuses on stderr by default; the RegexError carries the message instead.
    options.log_errors = False
    return options


_OPTIONS = _options()


@dataclass(frozen=True, slots=True)
class HttpRegex:
    """One compiled HTTP rule pattern; equal (and hashed) by its text. ``RegexError`` if RE2 refuses it."""

    pattern: str
    _compiled: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            compiled = re2.compile(self.pattern, _OPTIONS)
        except re2.error as exc:
            detail = exc.args[0] if exc.args else exc
            raise RegexError(detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)) \
                from None
        object.__setattr__(self, "_compiled", compiled)

    def fullmatch(self, value: str) -> bool:
        """Whether the whole of ``value`` matches, as Envoy's safe_regex matches a header value."""
        return self._compiled.fullmatch(value) is not None
