"""Train a Q-chunking SAC policy: `python -m tools.train [--preset=qc|sac|seed] [--config-path=FILE.json] ...`.

The seed's command line works as written:
    python -m tools.train --config-path=FILE.json --env-name=chunkbot/SO101Lift-v0 --steps=N --output_dir=DIR
A config file holding only policy keys (the seed's JSON block) is the policy config; a file with
train keys is a whole TrainConfig. Precedence: defaults < --preset < --config-path < command line.
Dashes in option names are accepted (--env-name = --env_name).
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import fields
from pathlib import Path

import draccus

from policy.config import QChunkSACConfig, explain_draccus_error, preset_dict
from policy.training import TrainConfig, train
from tools._common import fail, init_tool

POLICY_KEYS = {f.name for f in fields(QChunkSACConfig)}


def _normalise_option(arg: str) -> str:
    """--env-name=x -> --env_name=x (draccus wants the field names); values are left alone."""
    if not arg.startswith("--"):
        return arg
    key, eq, value = arg[2:].partition("=")
    return "--" + key.replace("-", "_") + eq + value


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def build_config(argv: list[str]) -> TrainConfig:
    args, preset_name, config_path = [], None, None
    argv = [_normalise_option(a) for a in argv]
    i = 0
    while i < len(argv):  # --preset / --config_path, as "--k=v" or "--k v"
        a = argv[i]
        for flag in ("--preset", "--config_path"):
            if a == flag and i + 1 < len(argv):
                a = f"{flag}={argv[i + 1]}"
                i += 1
        if a.startswith("--preset="):
            preset_name = a.split("=", 1)[1]
        elif a.startswith("--config_path="):
            config_path = a.split("=", 1)[1]
        else:
            args.append(a)
        i += 1
    merged: dict = {}
    if preset_name is not None:
        merged = {"policy": preset_dict(preset_name), "preset": preset_name}
    if config_path is not None:
        data = json.loads(Path(config_path).read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{config_path} must hold a JSON object")
        is_policy_file = set(data) <= POLICY_KEYS
        merged = _deep_merge(merged, {"policy": data} if is_policy_file else data)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.json"
        path.write_text(json.dumps(merged))
        return draccus.parse(TrainConfig, config_path=str(path), args=args)


def main(argv: list[str] | None = None) -> None:
    init_tool()
    try:
        cfg = build_config(sys.argv[1:] if argv is None else argv)
    except draccus.utils.DraccusException as e:
        fail(explain_draccus_error(e))
    except (ValueError, FileNotFoundError) as e:
        fail(str(e))
    try:
        result = train(cfg)
    except (FileExistsError, FileNotFoundError, ValueError) as e:
        fail(str(e))
    if result:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
