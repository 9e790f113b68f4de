"""A SHA-256 of an exported actor, kept inside the .onnx file and checked before it is run.

Inside, not beside: the actor goes to a robot as one copied file, and a sidecar checksum is the
first thing left behind. The digest is one `metadata_props` entry (key `sha256`, 64 hex characters)
and covers every byte of the file with those 64 characters read as zeros. `seal` (export side)
hashes the serialized model written with a zero placeholder and puts the digest in the
placeholder's place; the length does not change, so the protobuf stays valid. `verify` (runtime
side) finds the entry in the raw bytes, zeroes it and hashes again: hashlib only, no onnx package
and no torch, and no re-serialisation that could differ from the bytes on disk.
"""

from __future__ import annotations

import hashlib

from export.metadata import OnnxModelError

CHECKSUM_KEY = "sha256"
_DIGEST_LENGTH = 64
_PLACEHOLDER = b"0" * _DIGEST_LENGTH
# the serialized StringStringEntryProto up to its value: key (field 1) "sha256", value (field 2) of 64 bytes
_ENTRY_PREFIX = b"\x0a" + bytes([len(CHECKSUM_KEY)]) + CHECKSUM_KEY.encode() + b"\x12" + bytes([_DIGEST_LENGTH])
PLACEHOLDER = _PLACEHOLDER.decode()  # the value the exporter writes before sealing


def seal(model_bytes: bytes) -> bytes:
    """The serialized model (holding the `sha256` entry with PLACEHOLDER) with its digest filled in."""
    start = _digest_offset(model_bytes, "the model to seal")
    if model_bytes[start:start + _DIGEST_LENGTH] != _PLACEHOLDER:
        raise ValueError("the model's sha256 entry does not hold the placeholder: write it with PLACEHOLDER")
    digest = hashlib.sha256(model_bytes).hexdigest().encode()
    return model_bytes[:start] + digest + model_bytes[start + _DIGEST_LENGTH:]


def has_checksum(model_bytes: bytes) -> bool:
    return _ENTRY_PREFIX in model_bytes


def verify(model_bytes: bytes, source: str) -> None:
    """Raise OnnxModelError unless the file's bytes match the digest sealed into them at export."""
    start = _digest_offset(model_bytes, source)
    stored = model_bytes[start:start + _DIGEST_LENGTH]
    actual = hashlib.sha256(model_bytes[:start] + _PLACEHOLDER + model_bytes[start + _DIGEST_LENGTH:]).hexdigest()
    if stored != actual.encode():
        raise OnnxModelError(
            f"cannot load {source}: its bytes do not match the SHA-256 written into it at export (the file is "
            "corrupted, truncated or was changed after export); copy it again from where it was exported, or "
            "re-export it with `python -m tools.export_onnx`")


def _digest_offset(model_bytes: bytes, source: str) -> int:
    count = model_bytes.count(_ENTRY_PREFIX)
    if count != 1:
        raise OnnxModelError(f"{source} holds {count} {CHECKSUM_KEY!r} metadata entries, not one; re-export it with "
                             "`python -m tools.export_onnx`")
    return model_bytes.index(_ENTRY_PREFIX) + len(_ENTRY_PREFIX)
