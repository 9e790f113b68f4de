"""What travels on the link: arrays as raw bytes behind a validated JSON header, never pickle.

A body is

    b"CBL1" | u32 little-endian header length | header (UTF-8 JSON object) | array bytes ...

The header's `"arrays"` entry lists, for each array in order, `[name, dtype, shape]`; dtypes come
from a whitelist of plain numeric types (no object arrays, so decoding never runs code). Sizes are
computed with Python integers, never with a fixed-width product that could wrap (a shape
[2^32, 2^32] claiming 0 bytes is refused), each dimension and the rank are bounded, and the array
bytes must add up to exactly what the header claims. Every refusal is a `BodyRefused` whose
`reason` is a short counter key.

The same body is what the actor keeps in its outbox and the learner in its journal: it carries no
credential (the token goes with the call that sends it), so a batch stored under one token is sent
under whichever token the actor has when it sends.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import numpy as np

MAGIC = b"CBL1"
ALLOWED_DTYPES = frozenset({"bool", "uint8", "int8", "int16", "int32", "int64", "uint16", "uint32",
                            "float16", "float32", "float64"})
MAX_HEADER_BYTES = 64 * 1024
MAX_ARRAYS = 256
MAX_NDIM = 8
MAX_DIM = 1 << 31
_PREFIX = len(MAGIC) + 4


class BodyRefused(ValueError):
    """A body that is not well formed (or over a limit); `reason` is a short counter key."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def encode(header: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> bytes:
    """One body (see the module docstring). Raises ValueError for a dtype outside the whitelist."""
    specs, payload = [], []
    for name, a in (arrays or {}).items():
        a = np.ascontiguousarray(a)
        if a.dtype.name not in ALLOWED_DTYPES:
            raise ValueError(f"array {name!r} has dtype {a.dtype}; allowed: {sorted(ALLOWED_DTYPES)}")
        specs.append([name, a.dtype.name, list(a.shape)])
        payload.append(a.tobytes())
    if "arrays" in header:
        raise ValueError("'arrays' is the body's own header key")
    head = json.dumps({**header, "arrays": specs}, separators=(",", ":"), allow_nan=False).encode()
    return b"".join([MAGIC, struct.pack("<I", len(head)), head, *payload])


def _spec(raw: Any) -> tuple[str, np.dtype, tuple[int, ...], int]:
    """(name, dtype, shape, byte size) of one array spec, or BodyRefused."""
    if not (isinstance(raw, list) and len(raw) == 3):
        raise BodyRefused("malformed", f"bad array spec {str(raw)[:100]}")
    name, dtype, shape = raw
    if not (isinstance(name, str) and 0 < len(name) <= 128 and isinstance(dtype, str) and dtype in ALLOWED_DTYPES
            and isinstance(shape, list) and len(shape) <= MAX_NDIM
            and all(type(s) is int and 0 <= s <= MAX_DIM for s in shape)):
        raise BodyRefused("malformed", f"bad array spec {str(raw)[:100]}")
    dt = np.dtype(dtype)
    return name, dt, tuple(shape), math.prod(shape) * dt.itemsize   # Python ints: no wrap-around


def decode(body: bytes | memoryview, max_bytes: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(header, arrays) of a body; the arrays are read-only views into `body` (no copy)."""
    view = memoryview(body)
    if len(view) > max_bytes:
        raise BodyRefused("too_large", f"{len(view)} bytes > limit {max_bytes}")
    if len(view) < _PREFIX or bytes(view[:len(MAGIC)]) != MAGIC:
        raise BodyRefused("malformed", "not a chunkbot link body (no CBL1 prefix)")
    (n,) = struct.unpack_from("<I", view, len(MAGIC))
    if n > MAX_HEADER_BYTES or _PREFIX + n > len(view):
        raise BodyRefused("malformed", f"header of {n} bytes in a body of {len(view)}")
    try:
        header = json.loads(bytes(view[_PREFIX:_PREFIX + n]).decode(),
                            parse_constant=lambda c: _refuse_constant(c))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise BodyRefused("malformed", f"header is not JSON ({e})") from None
    if not isinstance(header, dict) or not isinstance(header.get("arrays"), list):
        raise BodyRefused("malformed", "header must be a JSON object with an 'arrays' list")
    raw_specs = header.pop("arrays")
    if len(raw_specs) > MAX_ARRAYS:
        raise BodyRefused("malformed", f"{len(raw_specs)} arrays (at most {MAX_ARRAYS})")
    specs = [_spec(s) for s in raw_specs]
    if len({s[0] for s in specs}) != len(specs):
        raise BodyRefused("malformed", "two arrays with one name")
    start = _PREFIX + n
    claimed = sum(s[3] for s in specs)
    if start + claimed != len(view):
        raise BodyRefused("malformed", f"arrays claim {claimed} bytes; the body holds {len(view) - start}")
    arrays: dict[str, np.ndarray] = {}
    for name, dt, shape, size in specs:
        arrays[name] = np.frombuffer(view[start:start + size], dtype=dt).reshape(shape)
        start += size
    return header, arrays


def _refuse_constant(name: str) -> None:
    raise BodyRefused("malformed", f"header holds {name} (not JSON)")


def encode_json(message: dict[str, Any]) -> bytes:
    """A small control message (acks, weight requests)."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False).encode()


def decode_json(raw: bytes, max_bytes: int = MAX_HEADER_BYTES) -> dict[str, Any]:
    if len(raw) > max_bytes:
        raise BodyRefused("too_large", f"control message of {len(raw)} bytes")
    try:
        out = json.loads(bytes(raw).decode(), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise BodyRefused("malformed", f"control message is not JSON ({e})") from None
    if not isinstance(out, dict):
        raise BodyRefused("malformed", "control message must be a JSON object")
    return out
