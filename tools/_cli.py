"""The command line of every tool: draccus configs read with LeRobot's flag names, one-line errors, a --help
that says what the tool does.

`parse_config(Config, doc=__doc__, aliases=LEROBOT_RECORD)` is what a tool's `main` calls:

* `--option-name` is `--option_name`, `--flag value` is `--flag=value`, and a bare boolean flag is
  `--flag=true` (`--resume` = `--resume=true`).
* LeRobot's flag names are aliases of ours. The tables below come from LeRobot 0.6.1's own tools
  (lerobot/scripts/lerobot_record.py, lerobot_teleoperate.py, lerobot/configs/train.py); a flag the
  config really has always wins over an alias of the same name.
* An unknown flag, a flag of another robot type, a bad value: one line that names the flag and what
  to type instead (the closest known flag for a typo). Nothing starts before the whole command line
  has been read.
* `--help` starts with the tool's docstring (what it does, an example), shows the defaults the tool
  really uses (the session's policy, the default robot type), and lists the LeRobot names it accepts.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

import draccus
from draccus.utils import DecodingError, DraccusException, is_choice_type

T = TypeVar("T")

TYPE_KEY = "type"


@dataclass(frozen=True)
class Alias:
    """LeRobot's name of a flag: the chunkbot flag it sets, or (target None) a LeRobot option chunkbot
    accepts only with the one value that matches what it does."""

    target: str | None
    only: str | None = None      # the only value accepted (None: any value)
    instead: str = ""            # what to do when another value is given (one line)


_DISPLAY = {"display_data": Alias("viz.display_data")}
_NO_UPLOAD = ("chunkbot writes datasets locally and uploads nothing; after recording, upload with "
              "`hf upload <repo_id> <dataset root> --repo-type=dataset`")
# lerobot-teleoperate
LEROBOT_TELEOPERATE: dict[str, Alias] = {**_DISPLAY, "teleop_time_s": Alias("duration_s")}
# lerobot-record (its --resume is top level, ours belongs to the dataset; it pushes to the Hub by default)
LEROBOT_RECORD: dict[str, Alias] = {
    **_DISPLAY,
    "resume": Alias("dataset.resume"),
    "dataset.video": Alias("dataset.use_videos"),
    "dataset.push_to_hub": Alias(None, only="false", instead=_NO_UPLOAD),
}
# lerobot-train
LEROBOT_TRAIN: dict[str, Alias] = {
    **_DISPLAY,
    "dataset.repo_id": Alias("dataset_repo_id"),
    "dataset.root": Alias("dataset_root"),
    "batch_size": Alias("policy.batch_size"),
    "policy.device": Alias("device"),
    "log_freq": Alias("log_every"),
    "save_freq": Alias("save_every"),
    "env_eval_freq": Alias("eval_every"),
    "eval.n_episodes": Alias("eval_episodes"),
}
# lerobot-rollout (a policy on a robot)
LEROBOT_ROLLOUT: dict[str, Alias] = {**_DISPLAY, "fps": Alias("execution.fps")}
# LeRobot's HIL tools (lerobot/rl) and its dataset viewer share only the display flag
LEROBOT_DISPLAY: dict[str, Alias] = dict(_DISPLAY)


# ----------------------------------------------------------------------------- the flags a config has
@dataclass
class _Leaf:
    bool_like: bool
    # each way the flag exists: the (choice path, choice name) pairs it needs, e.g. (("robot", "so101_follower"),)
    owners: list[tuple[tuple[str, str], ...]] = field(default_factory=list)


@dataclass
class _Flags:
    leaves: dict[str, _Leaf] = field(default_factory=dict)
    groups: set[str] = field(default_factory=set)                   # nested configs (a file may set them)
    choices: dict[str, type] = field(default_factory=dict)          # "robot" -> RobotConfig (registry)

    def names(self) -> list[str]:
        return [*self.leaves, *(f"{c}.{TYPE_KEY}" for c in self.choices)]


def _strip_optional(t: Any) -> Any:
    args = typing.get_args(t)
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return t


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # a forward reference that does not resolve: fall back to the raw annotations  # noqa: BLE001
        return {}


def _walk(cls: type, prefix: str, owner: tuple[tuple[str, str], ...], out: _Flags) -> None:
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        t = _strip_optional(hints.get(f.name, f.type))
        path = prefix + f.name
        if isinstance(t, type) and is_choice_type(t):
            out.choices[path] = t
            out.groups.add(path)
            for name, sub in t.get_known_choices().items():
                _walk(sub, path + ".", owner + ((path, name),), out)
        elif isinstance(t, type) and dataclasses.is_dataclass(t):
            out.groups.add(path)
            _walk(t, path + ".", owner, out)
        else:
            leaf = out.leaves.setdefault(path, _Leaf(bool_like=t is bool))
            leaf.owners.append(owner)


def config_flags(cls: type) -> _Flags:
    out = _Flags()
    _walk(cls, "", (), out)
    return out


def _register_every_device() -> bool:
    """Register every robot / teleoperator type, LeRobot's included (only for --help and on an error
    path: it imports LeRobot)."""
    try:
        from robot import config
    except ImportError:
        return False
    getattr(config, "adopt_lerobot_types", config.register_all)()
    return True


# ----------------------------------------------------------------------------- errors
class CommandLineError(ValueError):
    """A command line that cannot run; the message is one line that says what to type instead."""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _closest(word: str, candidates: list[str]) -> str | None:
    found = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    if not found:  # a flag given without its group (--num_episodes for --dataset.num_episodes)
        tails = [c for c in candidates if c.rsplit(".", 1)[-1] == word.rsplit(".", 1)[-1]]
        found = tails[:1]
    return found[0] if found else None


def _default_at(obj: Any, path: str) -> Any:
    for part in path.split(".") if path else []:
        if obj is None:
            return None
        obj = getattr(obj, part, None)
    return obj


def _type_name(obj: Any) -> str | None:
    name = getattr(obj, TYPE_KEY, None)
    if isinstance(name, str):
        return name
    try:
        return type(obj).get_choice_name(type(obj))
    except Exception:  # noqa: BLE001
        return None


# ----------------------------------------------------------------------------- the parser
@dataclass
class CommandLine:
    """How one tool reads its command line (see the module docstring)."""

    config_class: type
    doc: str = ""
    aliases: Mapping[str, Alias | str] = field(default_factory=dict)
    # flags the tool reads itself before draccus (name -> help), e.g. {"preset": "..."}
    extra: Mapping[str, str] = field(default_factory=dict)
    # the config the tool runs with when nothing is given (for --help's defaults and the robot type)
    defaults: Any = None
    # the tool's module name under tools/ ("record"): its console script is chunkbot-record
    tool: str | None = None

    def __post_init__(self) -> None:
        self.aliases = {k: (v if isinstance(v, Alias) else Alias(v)) for k, v in self.aliases.items()}
        if self.defaults is None:
            try:
                self.defaults = self.config_class()
            except Exception:  # a config with required fields: class defaults only  # noqa: BLE001
                self.defaults = None
        self._flags: _Flags | None = None
        self._given: dict[str, str] = {}

    @property
    def flags(self) -> _Flags:
        if self._flags is None:
            self._flags = config_flags(self.config_class)
        return self._flags

    def _refresh(self) -> None:
        self._flags = None

    # --------------------------------------------------------------------- rewriting
    def rewrite(self, argv: list[str]) -> list[str]:
        """The command line in draccus's form (`--a.b=value`), LeRobot's names replaced by ours; raises
        CommandLineError (one line) for anything that would not run."""
        pairs = self._pairs(argv)
        out = []
        for key, value in pairs:
            key, value = self._apply_alias(key, value)
            if key is None:
                continue
            self._check_known(key)
            self._check_value(key, value)
            out.append((key, value))
        self._check_choices(out)
        self._given = dict(out)
        return [f"--{k}={v}" for k, v in out]

    def _pairs(self, argv: list[str]) -> list[tuple[str, str]]:
        pairs: list[tuple[str, str]] = []
        i = 0
        while i < len(argv):
            arg = argv[i]
            if not arg.startswith("--") or arg == "--":
                raise CommandLineError(f"unexpected argument {arg!r}: options are written --name=value "
                                       "(--help lists them)")
            key, eq, value = arg[2:].partition("=")
            key = key.replace("-", "_")
            if not eq:
                nxt = argv[i + 1] if i + 1 < len(argv) else None
                if nxt is not None and not nxt.startswith("--"):
                    value = nxt
                    i += 1
                elif self._is_bool(key):
                    value = "true"
                else:
                    raise CommandLineError(f"--{key} needs a value: --{key}=VALUE (--help describes it)")
            pairs.append((key, value))
            i += 1
        return pairs

    def _is_bool(self, key: str) -> bool:
        leaf = self.flags.leaves.get(key)
        if leaf is not None:
            return leaf.bool_like
        alias = self.aliases.get(key)
        if alias is not None and alias.target is None:
            return alias.only in ("true", "false")
        target = alias.target if alias is not None else None
        return target is not None and self._is_bool(target)

    def _real(self, key: str) -> bool:
        flags = self.flags
        if key in flags.leaves or key in flags.groups or key in self.extra or key == "config_path":
            return True
        if key.endswith("." + TYPE_KEY) and key[: -len(TYPE_KEY) - 1] in flags.choices:
            return True
        # a key inside a dict-valued option (--robot.cameras.front.type=opencv)
        parts = key.split(".")
        return any(".".join(parts[:n]) in flags.leaves for n in range(1, len(parts)))

    def _in_config(self, key: str) -> bool:
        return key in self.flags.leaves or key == "config_path"

    def _apply_alias(self, key: str, value: str) -> tuple[str | None, str]:
        alias = self.aliases.get(key)
        if alias is None or self._real(key):
            return key, value
        if alias.only is not None and value.strip().lower() != alias.only:
            raise CommandLineError(f"--{key}={value} is not supported: {alias.instead}")
        return alias.target, value

    def _check_known(self, key: str) -> None:
        if self._real(key):
            return
        if self.flags.choices and _register_every_device():  # maybe an option of a type not yet registered
            self._refresh()
            if self._real(key):
                return
        known = [*self.flags.names(), *self.aliases, *self.extra]
        guess = _closest(key, known)
        hint = f"; did you mean --{guess}?" if guess else ""
        raise CommandLineError(f"unknown option --{key}{hint} (--help lists the options)")

    def _check_value(self, key: str, value: str) -> None:
        from draccus import cfgparsing

        try:
            cfgparsing.parse_string(value)
        except Exception as e:  # YAML syntax: an unclosed list, a stray colon  # noqa: BLE001
            problem = _one_line(getattr(e, "problem", None) or e)
            raise CommandLineError(f"--{key}={value}: cannot read the value ({problem}); lists are written "
                                   f"--{key}='[a, b]'") from None

    def _check_choices(self, pairs: list[tuple[str, str]]) -> None:
        """A `--robot.type` that exists, and every `--robot.x` an option of the robot type in use."""
        given = dict(pairs)
        flags = self.flags
        chosen: dict[str, str | None] = {}
        for path, registry in flags.choices.items():
            name = given.get(f"{path}.{TYPE_KEY}")
            if name is not None:
                known = sorted(registry.get_known_choices())
                if name not in known and _register_every_device():
                    self._refresh()
                    known = sorted(registry.get_known_choices())
                if name not in known:
                    guess = _closest(name, known)
                    hint = f"did you mean {guess}? " if guess else ""
                    raise CommandLineError(f"--{path}.{TYPE_KEY}={name} is not a known {path} type; {hint}"
                                           f"known: {', '.join(known)}")
                chosen[path] = name
            else:
                chosen[path] = _type_name(_default_at(self.defaults, path))
        flags = self.flags
        for key in given:
            leaf = flags.leaves.get(key)
            if leaf is None or any(all(chosen.get(p) == n for p, n in owner) for owner in leaf.owners):
                continue
            path, _ = next(iter(leaf.owners[0]))
            for owner in leaf.owners:  # the innermost choice the flag does not fit
                for p, n in owner:
                    if chosen.get(p) != n:
                        path = p
            types = sorted({n for owner in leaf.owners for p, n in owner if p == path})
            current = chosen.get(path)
            if current is None:
                raise CommandLineError(f"--{key} needs --{path}.{TYPE_KEY}=<{'|'.join(types)}>")
            source = "given" if f"{path}.{TYPE_KEY}" in given else "the default"
            raise CommandLineError(f"--{key} is not an option of {path} type {current} ({source}); it belongs to "
                                   f"--{path}.{TYPE_KEY}=<{'|'.join(types)}>")

    # --------------------------------------------------------------------- parsing
    def parse(self, argv: list[str] | None = None, parse: Callable[[list[str]], T] | None = None) -> T:
        """The config, or SystemExit: 0 after --help, 2 with one line on stderr for a bad command line."""
        from tools._common import fail

        argv = list(sys.argv[1:] if argv is None else argv)
        if "-h" in argv or "--help" in argv:
            print(self.help_text())
            raise SystemExit(0)
        try:
            args = self.rewrite(argv)
            return (parse or self._draccus_parse)(args)
        except CommandLineError as e:
            fail(str(e))
        except DraccusException as e:
            fail(self.explain(e))
        except argparse.ArgumentError as e:
            fail(_one_line(e))
        except (ValueError, TypeError, FileNotFoundError) as e:  # a config's own check, a missing config file
            fail(_one_line(e))

    def _draccus_parse(self, args: list[str]) -> Any:
        return draccus.parse(self.config_class, args=args, exit_on_error=False)

    def explain(self, error: BaseException) -> str:
        """draccus's error as one line naming the flag; our own config checks say what to change."""
        cause = error.__cause__ or error.__context__
        if isinstance(error, DecodingError):
            path = ".".join(str(p) for p in error.key_path)
            message = _one_line(error.message)
            missing = message.startswith("Missing required field(s)")
            if missing and " for " in message:
                names = [n.strip(" `") for n in message.split("field(s)", 1)[1].rsplit(" for ", 1)[0].split(",")]
                wanted = " ".join(f"--{path + '.' if path else ''}{n}=..." for n in names)
                chosen = self._given.get(f"{path}.{TYPE_KEY}") if path else None
                who = f"--{path}.{TYPE_KEY}={chosen}" if chosen else (f"--{path}" if path else "this tool")
                return f"{who} needs {wanted}"
            if isinstance(cause, ValueError) and not isinstance(cause, DecodingError) and "parse" not in message:
                return _one_line(cause)
            return f"--{path}: {message[0].lower() + message[1:]}" if path else message
        if isinstance(cause, (ValueError, TypeError)):
            return _one_line(cause)
        return _one_line(error)

    # --------------------------------------------------------------------- help
    def help_text(self) -> str:
        from draccus.argparsing import ArgumentParser as DraccusParser

        if self.flags.choices and _register_every_device():  # list every robot / teleoperator type
            self._refresh()
        prog = console_script(self.tool) if self.tool else Path(sys.argv[0]).name
        description = (self.doc or self.config_class.__doc__ or "").strip("\n")
        usage = f"Usage: {prog} [--option=value ...]"
        if self.tool:
            usage += f"   (or: python -m tools.{self.tool} ...)"
        parser = DraccusParser(self.config_class, description=f"{description}\n\n{usage}",
                               usage=argparse.SUPPRESS, prog=prog)
        ap = parser.parser
        for group in ap._action_groups:
            for action in group._group_actions:
                if (action.help or "").startswith("Config file for"):
                    action.help = argparse.SUPPRESS  # one per nested config, twice for some: noise
                elif action.dest in self.extra:
                    action.help = self.extra[action.dest]
                elif action.dest == "config_path":
                    action.help = "a JSON or YAML file of options (the command line wins over it)"
                elif not (action.help or "").strip() and action.option_strings != ["-h", "--help"]:
                    action.help = "default: %(default)s"  # argparse shows no default without a help text
            self._real_defaults(group)
        own = [name for name in self.extra if not self._in_config(name)]
        if own:
            group = ap.add_argument_group("read by the tool before the config")
            for name in own:
                group.add_argument(f"--{name}", help=self.extra[name], metavar="VALUE", default=argparse.SUPPRESS)
        if self.aliases:
            group = ap.add_argument_group("LeRobot's names for these options (accepted as aliases)")
            for name, alias in self.aliases.items():
                if self._real(name):
                    continue
                text = f"= --{alias.target}" if alias.target else f"only {alias.only}: {alias.instead}"
                group.add_argument(f"--{name}", help=text, metavar="VALUE", default=argparse.SUPPRESS)
        return ap.format_help()

    def _real_defaults(self, group: argparse._ArgumentGroup) -> None:
        """Show what the tool runs with: draccus prints a nested config's class defaults, the tool may
        build it differently (a session's policy, the sim arm as the default robot)."""
        title = group.title or ""
        cls_name, _, rest = title.partition(" ['")
        path = rest[:-2] if rest.endswith("']") else ("" if title == self.config_class.__qualname__ else None)
        if path is None or self.defaults is None:
            return
        obj = _default_at(self.defaults, path)
        if obj is None:
            return
        for action in group._group_actions:
            name = action.dest.rsplit(".", 1)[-1]
            if name == TYPE_KEY and action.dest == f"{path}.{TYPE_KEY}":
                action.default = _type_name(obj)
            elif type(obj).__qualname__ == cls_name and dataclasses.is_dataclass(obj) and hasattr(obj, name):
                value = getattr(obj, name)
                if not dataclasses.is_dataclass(value):
                    action.default = value


def console_script(tool: str) -> str:
    """The console script of `tools.<tool>` (pyproject.toml's [project.scripts]): chunkbot-export-onnx."""
    return "chunkbot-" + tool.replace("_", "-")


def parse_config(cls: type[T], argv: list[str] | None = None, *, tool: str | None = None, doc: str = "",
                 aliases: Mapping[str, Alias | str] | None = None, extra: Mapping[str, str] | None = None,
                 defaults: Any = None, parse: Callable[[list[str]], T] | None = None) -> T:
    """Read `cls` from the command line (see the module docstring); exits with one line on a bad one.
    `tool`: the module's name under tools/ (for --help's usage line), `doc`: its docstring."""
    cli = CommandLine(cls, doc=doc, aliases=aliases or {}, extra=extra or {}, defaults=defaults, tool=tool)
    return cli.parse(argv, parse)
