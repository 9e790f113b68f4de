"""A directory of numbered bodies that survives SIGKILL and power cuts: the actor's outbox and the
learner's journal.

Each body is its own file `<number>.body`, written to a temporary name, flushed to disk and renamed
into place (then the directory is flushed), so a file either is complete or does not exist; a
temporary left by a kill is removed on open. A small JSON state file (same atomic write) keeps what
the numbers alone cannot say (the actor's id, the next number after everything was removed).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Iterator

SUFFIX = ".body"
STATE = "state.json"


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BodyStore:
    """Numbered bodies on disk, oldest first. Thread-safe."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        for tmp in self.dir.glob("*.tmp"):
            tmp.unlink()
        self._lock = threading.Lock()
        self._numbers = sorted(int(p.name[:-len(SUFFIX)]) for p in self.dir.glob(f"*{SUFFIX}")
                               if p.name[:-len(SUFFIX)].isdigit())
        self.state: dict[str, Any] = self._read_state()
        last = self._numbers[-1] + 1 if self._numbers else 0
        self.next_number = max(int(self.state.get("next_number", 0)), last)

    def _read_state(self) -> dict[str, Any]:
        path = self.dir / STATE
        if not path.exists():
            return {}
        try:
            state = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise RuntimeError(f"{path} is unreadable ({e}); move it aside to start this store afresh") from None
        return state if isinstance(state, dict) else {}

    def save_state(self, **values: Any) -> None:
        with self._lock:
            self.state.update(values)
            self._write_state()

    def _write_state(self) -> None:
        self.state["next_number"] = self.next_number
        write_atomic(self.dir / STATE, json.dumps(self.state, indent=2).encode())

    def _path(self, number: int) -> Path:
        return self.dir / f"{number:012d}{SUFFIX}"

    def append(self, body: bytes) -> int:
        """Store `body` under the next number (durable when this returns); returns the number."""
        with self._lock:
            number = self.next_number
            write_atomic(self._path(number), body)
            self._numbers.append(number)
            self.next_number = number + 1
        return number

    def put(self, number: int, body: bytes) -> None:
        """Store `body` under a number given by the caller (the journal numbers by arrival)."""
        with self._lock:
            write_atomic(self._path(number), body)
            if number not in self._numbers:
                self._numbers.append(number)
                self._numbers.sort()
            self.next_number = max(self.next_number, number + 1)

    def oldest(self) -> tuple[int, bytes] | None:
        with self._lock:
            if not self._numbers:
                return None
            number = self._numbers[0]
        return number, self._path(number).read_bytes()

    def numbers(self) -> list[int]:
        with self._lock:
            return list(self._numbers)

    def read(self, number: int) -> bytes:
        return self._path(number).read_bytes()

    def items(self, after: int = -1) -> Iterator[tuple[int, bytes]]:
        for number in self.numbers():
            if number > after:
                yield number, self.read(number)

    def remove_through(self, number: int) -> int:
        """Delete every body numbered <= `number`; returns how many."""
        with self._lock:
            gone = [n for n in self._numbers if n <= number]
            self._numbers = [n for n in self._numbers if n > number]
            if gone and not self._numbers:  # the numbers alone would no longer say where to go on
                self._write_state()
        for n in gone:
            self._path(n).unlink(missing_ok=True)
        return len(gone)

    def remove(self, number: int) -> None:
        with self._lock:
            if number in self._numbers:
                self._numbers.remove(number)
                if not self._numbers:
                    self._write_state()
        self._path(number).unlink(missing_ok=True)

    def __len__(self) -> int:
        with self._lock:
            return len(self._numbers)
