"""``mctrack config``: every config option with its default and what it trades (the README's option table)."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path


def describe(cls, prefix: str = "") -> list[str]:
    """One line per option: key, default, doc (used to generate the README's option table)."""
    lines = []
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        default = f.default if f.default is not dataclasses.MISSING else None
        hint = typing.get_type_hints(cls)[f.name]
        if typing.get_origin(hint) is tuple and dataclasses.is_dataclass(typing.get_args(hint)[0]):
            lines.append(f"| `{key}` | (list) | {f.metadata.get('doc', '')} |")
            lines.extend(describe(typing.get_args(hint)[0], key + "[]."))
            continue
        if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            sub = f.default_factory()  # type: ignore[misc]
            if dataclasses.is_dataclass(sub):
                lines.extend(describe(type(sub), key + "."))
                continue
            default = sub
        lines.append(f"| `{key}` | `{default}` | {f.metadata.get('doc', '')} |")
    return lines


SECRET_KEYS = ("http_token", "http_password")


def _masked(value):
    """A config as plain data with secrets replaced by *** and credentials removed from URLs."""
    from streams.masking import mask_url

    if isinstance(value, dict):
        return {k: ("***" if k in SECRET_KEYS and v else _masked(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_masked(v) for v in value)
    if isinstance(value, str) and "://" in value:
        return mask_url(value)
    return value


def cmd_config(args: argparse.Namespace) -> int:
    from tracker.config import RunConfig

    print("| key | default | what it does / trades |\n|---|---|---|")
    print("\n".join(describe(RunConfig)))
    if args.config:
        from tracker.config import TrackConfig
        from tracker.io.config_file import load_yaml

        from tracker.io.config_file import resolve_config

        text = resolve_config(args.config).read_text()
        if "cameras:" in text:
            from tracker.pipeline import load_run_config

            cfg = load_run_config(args.config)
        else:
            cfg = load_yaml(args.config, TrackConfig)
        print(f"\n{args.config} is valid; its values:")
        print(_masked(dataclasses.asdict(cfg)))
    return 0


def register(sub) -> None:
    c = sub.add_parser("config", help="list every config option with its default and what it trades")
    c.add_argument("--config", help="also validate this YAML file (a run or a track config) and print its values")
    c.set_defaults(func=cmd_config)
