"""Typed reads of parsed YAML with errors that name the field: the edge where raw dicts stop.

Every loader (topology, flows, policies) reads untrusted YAML. These helpers check one value's
type and, when it is wrong, raise the loader's own error (``PolicyError`` naming file, document
and field, or ``TopologyError`` naming file and field) through a ``Fail`` callback, so a malformed
file always ends as exit code 2 with a message a user can act on, never as a ``KeyError`` deep in
the engine.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import yaml

from flowcheck.errors import InputError
from flowcheck.manifests.documents import type_name, yaml_error_text
from flowcheck.manifests.field_path import join as join
from flowcheck.manifests.kinds import without_nulls as without_nulls
from flowcheck.manifests.yaml_loader import SafeLoader

Fail = Callable[[str, str], InputError]
"""``fail(field, message)`` builds the error to raise for a bad value at ``field``."""


def mapping(value: Any, field: str, fail: Fail) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(field, f"expected a mapping, got {type_name(value)}")
    for key in value:
        if not isinstance(key, str):
            raise fail(field, f"expected string keys, got {type_name(key)} {key!r}")
    return value


def optional_mapping(value: Any, field: str, fail: Fail) -> dict[str, Any]:
    """A mapping, or ``{}`` when the value is null (YAML ``key:`` with nothing after it)."""
    return {} if value is None else mapping(value, field, fail)


def sequence(value: Any, field: str, fail: Fail) -> list[Any]:
    if not isinstance(value, list):
        raise fail(field, f"expected a list, got {type_name(value)}")
    return value


def optional_sequence(value: Any, field: str, fail: Fail) -> list[Any]:
    """A list, or ``[]`` when the value is null (YAML ``key:`` with nothing after it)."""
    return [] if value is None else sequence(value, field, fail)


def string(value: Any, field: str, fail: Fail, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise fail(field, f"expected a string, got {type_name(value)}")
    if not allow_empty and not value:
        raise fail(field, "must not be empty")
    return value


def ip_address(value: Any, field: str, fail: Fail) -> str:
    """A string holding an IPv4 or IPv6 address (kept as written)."""
    text = string(value, field, fail)
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise fail(field, f"{text!r} is not an IP address") from None
    return text


def integer(value: Any, field: str, fail: Fail, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(field, f"expected a number from {low} to {high}, got {type_name(value)}")
    if not low <= value <= high:
        raise fail(field, f"expected a number from {low} to {high}, got {value}")
    return value


def boolean(value: Any, field: str, fail: Fail) -> bool:
    if not isinstance(value, bool):
        raise fail(field, f"expected true or false, got {type_name(value)}")
    return value


def string_map(value: Any, field: str, fail: Fail) -> dict[str, str]:
    """A ``{string: string}`` mapping (labels); null means empty."""
    out: dict[str, str] = {}
    for key, item in optional_mapping(value, field, fail).items():
        if not isinstance(item, str):
            raise fail(join(field, key), f"expected a string value, got {type_name(item)} "
                                         "(quote numbers and booleans in labels)")
        out[key] = item
    return out


def known_keys(value: dict[str, Any], field: str, allowed: Collection[str], fail: Fail) -> None:
    """Refuse keys outside ``allowed``: a typo (``lables``) must not silently change a verdict."""
    for key in value:
        if key not in allowed:
            raise fail(join(field, key), f"unknown field {key!r} (known fields here: {', '.join(sorted(allowed))})")


def read_data_file(path: str | Path, fail: Fail) -> Any:
    """Parse a YAML (or, for ``*.json``, JSON) file; an unreadable or malformed file is ``fail("", ...)``."""
    name = str(path)
    if Path(path).is_dir():
        raise fail("", "is a directory; expected a file")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise fail("", f"cannot read file: {exc}") from exc
    try:
        return json.loads(text) if name.endswith(".json") else yaml.load(text, Loader=SafeLoader)
    except json.JSONDecodeError as exc:
        raise fail("", f"invalid JSON: {exc}") from exc
    except yaml.YAMLError as exc:
        raise fail("", yaml_error_text(exc)) from exc
    except RecursionError:
        raise fail("", "nested too deeply to be a topology or a list of flows") from None

