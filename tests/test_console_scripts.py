"""Every tool is an installed command (pyproject.toml's [project.scripts]) beside `python -m tools.<name>`."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

from tools._cli import console_script

REPO = Path(__file__).resolve().parents[1]
SCRIPTS: dict[str, str] = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
BIN = Path(sys.executable).parent

# Runs each installed script file as its own __main__ with `--help`, in one interpreter: most tools import
# torch and LeRobot, which would cost seconds of CPU per script in separate processes.
RUN_EACH = """
import contextlib, io, json, runpy, sys
out = {}
for path in sys.argv[1:]:
    sys.argv = [path, "--help"]
    buf = io.StringIO()
    code = None
    with contextlib.redirect_stdout(buf):
        try:
            runpy.run_path(path, run_name="__main__")
        except SystemExit as e:
            code = e.code
    out[path] = {"code": code, "help": buf.getvalue()}
print(json.dumps(out))
"""


def test_every_tool_has_a_console_script_named_after_it():
    tools = sorted(p.stem for p in (REPO / "tools").glob("*.py") if not p.stem.startswith("_"))
    assert {console_script(t): f"tools.{t}:main" for t in tools} == SCRIPTS


def test_the_scripts_are_installed():
    missing = [name for name in SCRIPTS if not (BIN / name).is_file()]
    assert not missing, f"{missing} are not installed in {BIN}: run ./setup.sh again (it installs them)"


def test_an_installed_script_runs_as_a_command():
    proc = subprocess.run([str(BIN / "chunkbot-find-port"), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Usage: chunkbot-find-port " in proc.stdout


def test_each_installed_script_answers_help_with_what_the_tool_does():
    paths = [str(BIN / name) for name in SCRIPTS]
    proc = subprocess.run([sys.executable, "-c", RUN_EACH, *paths], capture_output=True, text=True, timeout=300,
                          cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, target in SCRIPTS.items():
        result = results[str(BIN / name)]
        assert result["code"] in (0, None), f"{name} --help exited {result['code']}"
        first_line = __import__(target.split(":")[0], fromlist=["_"]).__doc__.strip().splitlines()[0]
        assert result["help"].splitlines()[0] == first_line, name
        assert f"Usage: {name} " in result["help"], name
