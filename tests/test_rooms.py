"""The import rules of docs/design.md ("The rooms of the code") that a grep can hold: nothing outside the
suite imports `tests/`; what the benchmarks share with the tests lives in `emulators/` and `testing/`."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOMS = ("contract", "calibration", "robot", "policy", "hil", "link", "export", "tools", "emulators", "testing",
         "benchmarks", "plugins")


def imported_packages(path: Path) -> set[str]:
    """Top-level package of every import in `path`, wherever it sits (functions included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_nothing_outside_the_suite_imports_tests():
    sources = [p for room in ROOMS for p in (REPO / room).rglob("*.py")]
    assert any(p.parts[-2:] == ("benchmarks", "bench_onnx.py") for p in sources), "the scan misses the benchmarks"
    offenders = sorted(str(p.relative_to(REPO)) for p in sources if "tests" in imported_packages(p))
    assert not offenders, f"these import tests/ (move what they need to testing/ or emulators/): {offenders}"
