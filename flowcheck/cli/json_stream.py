"""Writing a long JSON document as it is produced: ``{...head, "results": [record, record, ...]}``.

A plan of N workloads is N x N records: hundreds of megabytes of JSON for N = 500. Building the
whole document and then ``json.dumps`` it holds every record twice (the objects and the text) and,
with ``indent``, runs the standard library's pure-Python encoder, which was most of the time of
``flowcheck plan --format json``. This writer takes the records as an iterator, encodes them in
batches with the C encoder (which the standard library uses only without ``indent``) and writes
each batch at once, so memory stays bounded by one batch whatever the plan's size.

Compact output (no whitespace: ``separators=(",", ":")``) is the default; ``indent`` gives the
layout ``json.dumps(document, indent=indent)`` gives, byte for byte, for people reading it (and
costs the pure-Python encoder's time). Either way the text is exactly
``json.dumps({**head, key: list(records)}, ...)`` with those options plus a final newline: what
records are is not this module's business -- the command passes the iterator of per-flow dicts
that one function of the model's JSON form builds.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

BATCH_RECORDS = 1024
"""Records encoded per ``encode`` call: large enough that the per-call overhead vanishes, small enough
that a batch's text stays a few hundred kilobytes."""

COMPACT_SEPARATORS = (",", ":")


def write_json_stream(out: TextIO, head: Mapping[str, Any], key: str, records: Iterable[Any], *,
                      indent: int | None = None) -> None:
    """Write ``{**head, key: [*records]}`` to ``out`` followed by a newline, consuming ``records`` lazily."""
    if key in head:
        raise ValueError(f"{key!r} is the streamed list and cannot also be a head field")
    if indent is None:
        _write_compact(out, head, key, records)
    else:
        _write_indented(out, head, key, records, indent)
    out.write("\n")


def write_encoded_json_stream(out: TextIO, head: Mapping[str, Any], key: str, encoded: Iterable[str]) -> None:
    """``write_json_stream`` (compact) for records already encoded, each as compact JSON text.

    For a caller that encodes many records alike once and fills in what differs
    (``flowcheck.cli.plan_encoding``); the text written is the same.
    """
    if key in head:
        raise ValueError(f"{key!r} is the streamed list and cannot also be a head field")
    out.write(_compact_opening(head, key))
    first = True
    iterator = iter(encoded)
    while batch := list(itertools.islice(iterator, BATCH_RECORDS)):
        if not first:
            out.write(",")
        out.write(",".join(batch))
        first = False
    out.write("]}\n")


def _compact_opening(head: Mapping[str, Any], key: str) -> str:
    """'{...head...,"key":[': the head, then the streamed list left open."""
    return json.dumps({**head, key: []}, separators=COMPACT_SEPARATORS)[:-2]


def _write_compact(out: TextIO, head: Mapping[str, Any], key: str, records: Iterable[Any]) -> None:
    encode = json.JSONEncoder(separators=COMPACT_SEPARATORS).encode
    out.write(_compact_opening(head, key))
    first = True
    iterator = iter(records)
    while batch := list(itertools.islice(iterator, BATCH_RECORDS)):
        text = encode(batch)  # the C encoder: '[r1,r2,...]'
        if not first:
            out.write(",")
        out.write(text[1:-1])
        first = False
    out.write("]}")


def _write_indented(out: TextIO, head: Mapping[str, Any], key: str, records: Iterable[Any], indent: int) -> None:
    encode = json.JSONEncoder(indent=indent).encode
    level1, level2 = " " * indent, " " * (2 * indent)
    out.write("{\n")
    for name, value in head.items():
        out.write(f"{level1}{encode(name)}: {_nested(encode(value), level1)},\n")
    out.write(f"{level1}{encode(key)}: [")
    empty = True
    for record in records:
        out.write("\n" if empty else ",\n")
        out.write(level2 + _nested(encode(record), level2))
        empty = False
    out.write("]\n}" if empty else f"\n{level1}]\n}}")


def _nested(text: str, prefix: str) -> str:
    """Indented JSON text placed one level deeper: every line but the first gets ``prefix``.

    JSON text holds newlines only between tokens (a newline inside a string is written ``\\n``), so
    splitting on them never cuts a value.
    """
    return text.replace("\n", "\n" + prefix)
