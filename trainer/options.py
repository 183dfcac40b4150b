"""CLI flags generated from a config dataclass, shared by both trainers.

Field `foo_bar` becomes `--foo-bar`. Flags default to None so `from_args` can tell 'given' from 'not given': a
resumed run starts from its saved config and only the flags actually given override it.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, Field, asdict, fields
from typing import Any, ClassVar, TypeVar

C = TypeVar("C")


def _default(f: Field) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def add_arguments(parser: argparse.ArgumentParser, cls: type, aliases: dict[str, list[str]] | None = None) -> None:
    """One flag per field of the dataclass `cls` (help, choices and metavar from the field's metadata; fields with
    metadata cli=False get no flag). A list field takes several values and may be repeated: `--x A --x B C`."""
    for f in fields(cls):
        if f.metadata.get("cli", True) is False:
            continue
        flags = ["--" + f.name.replace("_", "-"), *(aliases or {}).get(f.name, [])]
        default = _default(f)
        help_text = f.metadata.get("help", "")
        described = help_text if default is None else f"{help_text} (default: {default})"
        if isinstance(default, bool) and f.name.startswith("no_"):  # --no-pretrained: a plain switch
            parser.add_argument(*flags, action="store_true", default=None, help=help_text)
        elif isinstance(default, bool):
            parser.add_argument(*flags, action=argparse.BooleanOptionalAction, default=None, help=described)
        elif isinstance(default, list):
            parser.add_argument(*flags, nargs="+", action="extend", default=None,
                                metavar=f.metadata.get("metavar", "KEY VALUE"), help=described)
        else:
            kind = type(default) if default is not None else str
            parser.add_argument(*flags, type=kind, default=None, choices=f.metadata.get("choices"), help=described)


def to_argv(config: Any) -> list[str]:
    """The flags that give `config` from its class's defaults (the inverse of add_arguments + from_args): what a
    program that starts a trainer in a child process passes, built from the config dataclass, not by hand."""
    argv: list[str] = []
    for f in fields(config):
        value, default = getattr(config, f.name), _default(f)
        if value == default or f.metadata.get("cli", True) is False:
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(default, bool) and f.name.startswith("no_"):
            if not value:
                raise ValueError(f"{flag} is a switch: it cannot be turned off once its default is on")
            argv.append(flag)
        elif isinstance(default, bool):
            argv.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, list):
            argv += [flag, *map(str, value)] if value else []
        else:
            argv += [flag, str(value)]
    return argv


def from_args(cls: type[C], args: argparse.Namespace, base: C | None = None) -> C:
    """Defaults (or a resumed run's saved config), overridden by the flags actually given."""
    config = asdict(base if base is not None else cls())  # type: ignore[call-overload]
    config.update({k: v for k, v in vars(args).items() if k in config and v is not None})
    return cls(**config)


def from_dict(cls: type[C], data: dict[str, Any]) -> C:
    """A config from a saved config.yaml, ignoring keys this version does not know (e.g. 'kind')."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


class RunConfig:
    """Base of the trainers' config dataclasses: config.yaml is the fields plus `kind`, read back by from_dict."""

    kind: ClassVar[str]  # the trainer that wrote the config (python -m trainer KIND)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        return from_dict(cls, data)
