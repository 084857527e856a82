"""A method one slip from GET or POST is refused as a typo at every entry point; real methods never are."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowcheck.errors import TopologyError
from flowcheck.model.flows import parse_flow
from flowcheck.vocabulary import HTTP_METHODS, http_method_typo


@pytest.mark.parametrize(("method", "meant"), [
    ("POTS", "POST"), ("PSOT", "POST"), ("GTE", "GET"), ("GETT", "GET"), ("GE", "GET"), ("DELET", "DELETE"),
    ("PACTH", "PATCH"), ("PUTS", "PUT"), ("pots", "POST"),
])
def test_one_edit_from_a_common_method_is_a_typo(method: str, meant: str) -> None:
    assert http_method_typo(method) == meant


@pytest.mark.parametrize("method", ["GET", "post", "PURGE", "PROPFIND", "MKCOL", "BREW", "X-CUSTOM", "FOOBAR"])
def test_methods_and_extension_methods_far_from_common_ones_are_taken_as_meant(method: str) -> None:
    assert http_method_typo(method) is None


@given(st.sampled_from(sorted(HTTP_METHODS)))
def test_no_registered_method_is_ever_called_a_typo(method: str) -> None:
    assert http_method_typo(method) is None
    assert http_method_typo(method.lower()) is None


def _edits(a: str, b: str) -> int:
    """Optimal string alignment distance (insert, delete, substitute, swap neighbours): the test's oracle."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


COMMON = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE")


@given(st.one_of(st.text(alphabet="ACDEGHILNOPRSTUX-", max_size=9),
                 st.sampled_from(COMMON).flatmap(lambda m: st.sampled_from(sorted(_neighbours(m))))))
def test_a_method_is_flagged_exactly_when_it_is_one_edit_from_a_common_one_and_not_registered(method: str) -> None:
    meant = http_method_typo(method)
    near = [m for m in COMMON if _edits(method, m) == 1]
    if method in HTTP_METHODS or not near:
        assert meant is None
    else:
        assert meant == near[0]


def _neighbours(method: str) -> set[str]:
    letters = "ACDEGHILNOPRSTUX"
    out = {method[:i] + method[i + 1:] for i in range(len(method))}
    out |= {method[:i] + c + method[i:] for i in range(len(method) + 1) for c in letters}
    out |= {method[:i] + c + method[i + 1:] for i in range(len(method)) for c in letters}
    out |= {method[:i] + method[i + 1] + method[i] + method[i + 2:] for i in range(len(method) - 1)}
    return out - {method}


def test_a_flows_file_names_the_method_field() -> None:
    def fail(field: str, message: str) -> TopologyError:
        return TopologyError("flows.yaml", field, message)

    raw = {"from": "default/a", "to": "default/b", "protocol": "TCP", "port": 80, "http": {"method": "POTS"}}
    with pytest.raises(TopologyError, match=r"field flows\[0\]\.http\.method: POTS is not an HTTP method; did you "
                                            r"mean POST\?"):
        parse_flow(raw, "flows[0]", fail)
    raw["http"] = {"method": "G T"}
    with pytest.raises(TopologyError, match=r"expected an HTTP method \(a token such as GET\), got 'G T'"):
        parse_flow(raw, "flows[0]", fail)
