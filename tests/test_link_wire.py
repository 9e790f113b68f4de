"""The link's body format: arrays as raw bytes behind a validated header, never pickle."""

from __future__ import annotations

import json
import pickle
import struct

import numpy as np
import pytest

from link.wire import MAGIC, BodyRefused, decode, decode_json, encode

LIMIT = 1 << 20


def body(header: dict, payload: bytes = b"") -> bytes:
    head = json.dumps(header).encode()
    return MAGIC + struct.pack("<I", len(head)) + head + payload


def test_arrays_round_trip_through_the_body_format():
    arrays = {"state": np.random.default_rng(0).normal(size=(5, 7)).astype(np.float32),
              "done": np.array([False, True]), "img": np.zeros((2, 4, 4, 3), np.uint8)}
    header, out = decode(encode({"seq": 3}, arrays), LIMIT)
    assert header == {"seq": 3}
    for k, v in arrays.items():
        assert out[k].dtype == v.dtype and np.array_equal(out[k], v)


def test_a_shape_whose_size_overflows_64_bits_is_refused_not_wrapped():
    with pytest.raises(BodyRefused, match="malformed"):
        decode(body({"arrays": [["x", "uint8", [2**32, 2**32]]]}), LIMIT)


@pytest.mark.parametrize("raw", [
    b"", b"CBL", b"XXXX\x00\x00\x00\x00",                                     # no prefix
    MAGIC + struct.pack("<I", 10**6) + b"{}",                                   # header longer than the body
    body({"arrays": [["x", "float32", [4]]]}, b"\0" * 12),                      # too few bytes
    body({"arrays": [["x", "float32", [1]]]}, b"\0" * 8),                       # too many bytes
    body({"arrays": [["x", "object", [1]]]}, b"\0" * 8),                        # object dtype
    body({"arrays": [["x", "float32", [-1]]]}),                                 # negative dimension
    body({"arrays": [["x", "float32", [1.5]]]}),                                # fractional dimension
    body({"arrays": [["x", "uint8", [1] * 9]]}, b"\0"),                         # rank over the limit
    body({"arrays": [["x", "uint8", [1]], ["x", "uint8", [1]]]}, b"\0\0"),      # two arrays, one name
    body({"arrays": "no"}), body([1, 2]),                                       # not the header's shape
    MAGIC + struct.pack("<I", 13) + b'{"a": NaN, "arrays": []}'[:13],          # not JSON
    MAGIC + struct.pack("<I", 24) + b'{"a": NaN, "arrays": []}',               # NaN is not JSON
], ids=["empty", "short", "no_magic", "long_header", "too_few", "too_many", "object", "negative", "fraction",
        "rank", "duplicate", "arrays_not_list", "header_not_object", "truncated_json", "nan"])
def test_a_malformed_body_is_refused(raw):
    with pytest.raises(BodyRefused) as e:
        decode(raw, LIMIT)
    assert e.value.reason == "malformed"


def test_a_pickle_is_refused_and_never_unpickled():
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('unpickled!')",))

    with pytest.raises(BodyRefused, match="malformed"):
        decode(pickle.dumps(Boom()), LIMIT)
    with pytest.raises(BodyRefused, match="malformed"):
        decode_json(pickle.dumps(Boom()))


def test_an_oversized_body_is_refused():
    with pytest.raises(BodyRefused) as e:
        decode(encode({}, {"big": np.zeros(10_000, np.uint8)}), max_bytes=5_000)
    assert e.value.reason == "too_large"


def test_an_array_of_a_dtype_outside_the_whitelist_cannot_be_sent():
    with pytest.raises(ValueError, match="dtype"):
        encode({}, {"x": np.array([object()])})
