"""Decode a top-level JSON array element by element while its bytes arrive.

Sonarr's ``/series`` and Radarr's ``/movie`` are not paged: the whole library comes back as one
array. Decoding it incrementally keeps memory bounded by one element, not by the library.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator
from typing import Any

_WHITESPACE = " \t\n\r"


def iter_json_array(chunks: Iterable[bytes]) -> Iterator[Any]:
    """Yield each element of the JSON array spread over ``chunks``; ``ValueError`` if it is not one."""
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8")()
    buf = ""
    state = "start"  # start -> element -> separator -> element ... -> done
    for chunk, final in _with_final(chunks):
        buf += utf8.decode(chunk, final=final)
        pos = 0
        while True:
            while pos < len(buf) and buf[pos] in _WHITESPACE:
                pos += 1
            if pos == len(buf):
                break
            if state == "start":
                if buf[pos] != "[":
                    raise ValueError("expected a JSON array")
                pos, state = pos + 1, "first"
            elif state in ("first", "separator") and buf[pos] == "]":
                pos, state = pos + 1, "done"
            elif state == "separator":
                if buf[pos] != ",":
                    raise ValueError(f"expected ',' or ']' in JSON array, got {buf[pos]!r}")
                pos, state = pos + 1, "element"
            elif state == "done":
                raise ValueError("data after the end of the JSON array")
            else:
                try:
                    value, end = decoder.raw_decode(buf, pos)
                except json.JSONDecodeError:
                    if final:
                        raise ValueError("truncated or malformed JSON array") from None
                    break  # the element continues in the next chunk
                if end == len(buf) and not final:
                    break  # a number could still be growing; wait for the next chunk
                yield value
                pos, state = end, "separator"
        buf = buf[pos:]
    if state != "done":
        raise ValueError("truncated JSON array")


def _with_final(chunks: Iterable[bytes]) -> Iterator[tuple[bytes, bool]]:
    """Pair each chunk with whether it is the last one (an empty final chunk closes the stream)."""
    for chunk in chunks:
        yield chunk, False
    yield b"", True
