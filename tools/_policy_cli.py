"""Command-line parsing shared by tools.train, tools.hil_session, tools.actor and tools.learner.

`--config-path=FILE.json`: a file holding only policy keys (configs/first_action.json, a saved
config.json) sets the policy; any other file is a whole session config. `--preset=qc|sac|first_action`
starts the policy from a preset. Precedence: defaults < preset < config file < command line. Renamed presets
and configs/ files (`seed`, configs/seed.json) still work, with a one-line notice.
Dashes in option names are accepted (--output-dir = --output_dir).
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any, Mapping, TypeVar

import draccus

from policy.config import QChunkSACConfig, preset_dict, preset_name

log = logging.getLogger(__name__)
T = TypeVar("T")
POLICY_KEYS = {f.name for f in fields(QChunkSACConfig)}
CONFIGS_DIR = Path(__file__).resolve().parents[1] / "configs"
# configs/ files renamed after what they hold; the old name is kept beside the new one and still loads
RENAMED_CONFIG_FILES: dict[str, str] = {"seed.json": "first_action.json"}


def _note_renamed_config(path: str) -> None:
    """One line when `path` is a shipped configs/ file under its former name."""
    file = Path(path).absolute()
    if file.name in RENAMED_CONFIG_FILES and file.parent.resolve() == CONFIGS_DIR:
        new = file.with_name(RENAMED_CONFIG_FILES[file.name])
        log.warning("%s is now named %s (the old name will go)", path, new.relative_to(CONFIGS_DIR.parent))


def _normalise(arg: str) -> str:
    if not arg.startswith("--"):
        return arg
    key, eq, value = arg[2:].partition("=")
    return "--" + key.replace("-", "_") + eq + value


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _session_policy_overrides(default_policy: QChunkSACConfig) -> dict:
    """The fields where a tool's default policy differs from QChunkSACConfig's own defaults.

    Only these are layered under a preset or a config file: encoding the whole default would pin the
    derived fields (critic_mode, critic_aggregation, backup_entropy resolved for the paper's critic),
    so configs/first_action.json, which names a q_chunking_strategy and leaves those to be derived, would
    silently get the paper's critic."""
    ours, base = draccus.encode(default_policy), draccus.encode(QChunkSACConfig())
    return {k: v for k, v in ours.items() if base.get(k) != v}


def _obs_mode(args: list[str], data: dict) -> str | None:
    """The observation mode the command line (`--obs_mode=X`) or else the config file names."""
    return next((a.split("=", 1)[1] for a in args if a.startswith("--obs_mode=")), data.get("obs_mode"))


def parse_with_policy_file(cls: type[T], argv: list[str], policy_field: str = "policy",
                           preset_field: str | None = None) -> T:
    args, preset, path = [], None, None
    argv = [_normalise(a) for a in argv]
    i = 0
    while i < len(argv):
        a = argv[i]
        for flag in ("--preset", "--config_path", "--obs_mode"):   # `--flag value` read as `--flag=value`
            if a == flag and i + 1 < len(argv):
                a = f"{flag}={argv[i + 1]}"
                i += 1
        if a.startswith("--preset="):
            preset = a.split("=", 1)[1]
        elif a.startswith("--config_path="):
            path = a.split("=", 1)[1]
        else:
            args.append(a)
        i += 1
    # draccus builds a nested dataclass named on the command line from its class defaults, not from
    # the field's default_factory: without this, one --policy.x flag would silently replace the
    # session's policy defaults with QChunkSACConfig's (10 critics of 4x512). A preset starts from
    # the class defaults on purpose (it names the paper's / the seed document's values).
    default_policy = next(f for f in fields(cls) if f.name == policy_field).default_factory()
    merged: dict = {policy_field: _session_policy_overrides(default_policy)}
    if preset is not None:
        preset = preset_name(preset)
        merged = {policy_field: preset_dict(preset)}
        if preset_field is not None:
            merged[preset_field] = preset
    data: dict = {}
    if path is not None:
        _note_renamed_config(path)
        data = json.loads(Path(path).read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{path} must hold a JSON object")
        if set(data) <= POLICY_KEYS:
            data = {policy_field: data}
    # an observation mode with its own recipe (tools.train's pixels) layers it over the defaults or the preset;
    # the config file and the command line still override it
    recipe = getattr(cls, "POLICY_RECIPE_BY_OBS_MODE", {}).get(_obs_mode(args, data))
    if recipe:
        merged = _deep_merge(merged, {policy_field: recipe})
    merged = _deep_merge(merged, data)
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "config.json"
        file.write_text(json.dumps(merged))
        return draccus.parse(cls, config_path=str(file), args=args)


POLICY_FLAGS = {
    "preset": "start the policy from a preset: qc (the paper's QC-RLPD sizes: 10 critics of 4x512), sac "
              "(plain SAC, chunk of 1), first_action (first-action critic with the ACT actor: the seed document's "
              "JSON block; formerly `seed`)",
    "config_path": "a JSON file: only policy keys (configs/first_action.json, a checkpoint's config.json) sets the "
                   "policy, any other keys a whole config. Precedence: defaults < --preset < this file < command line",
}


def parse_cli(cls: type[T], argv: list[str] | None = None, policy_field: str = "policy",
              preset_field: str | None = None, *, tool: str | None = None, doc: str = "",
              aliases: Mapping[str, Any] | None = None) -> T:
    """`parse_with_policy_file` on the command line, read as every tool reads it (tools._cli: LeRobot's
    names, one-line errors with the closest flag, --help with the real defaults)."""
    from tools._cli import parse_config

    return parse_config(cls, argv, tool=tool, doc=doc, aliases=aliases, extra=POLICY_FLAGS,
                        parse=lambda args: parse_with_policy_file(cls, args, policy_field, preset_field))
