"""The streaming array decoder yields the same elements however the bytes are split."""

from __future__ import annotations

import json

import pytest

from smartplex.clients._jsonstream import iter_json_array

DOC = [{"id": 1, "title": "Amélie ✓", "n": [1, 2.5, None]}, {"id": 2, "s": "a,]b"}, 12345, "x", [], {}]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 10_000])
def test_any_chunking_gives_the_same_elements(chunk: int) -> None:
    raw = json.dumps(DOC, ensure_ascii=False, indent=1).encode()
    chunks = [raw[i : i + chunk] for i in range(0, len(raw), chunk)]
    assert list(iter_json_array(chunks)) == DOC


def test_empty_array() -> None:
    assert list(iter_json_array([b" [ ", b"] "])) == []


@pytest.mark.parametrize("raw", [b'{"id": 1}', b"[1, 2", b"[1 2]", b"[1], 2", b""])
def test_non_arrays_are_refused(raw: bytes) -> None:
    with pytest.raises(ValueError):
        list(iter_json_array([raw]))
