"""Config files: YAML loading into the config dataclasses, ``--set`` overrides and ``${VAR}`` expansion."""

from __future__ import annotations

from pathlib import Path

from tracker.config import TrackConfig
from tracker.core.config import from_dict
from tracker.errors import UserError


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``--set key.sub=value`` overrides (YAML-parsed values) to a raw config mapping.

    ``cameras[0].fps=10`` addresses list items. Unknown keys are caught by ``from_dict`` later.
    """
    import re

    import yaml

    data = dict(data)
    for item in overrides:
        if "=" not in item:
            raise UserError(f"--set expects key=value, got '{item}'")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw else ""
        node = data
        parts = key.strip().split(".")
        for j, part in enumerate(parts):
            m = re.fullmatch(r"([A-Za-z_]+)(?:\[(\d+)\])?", part)
            if not m:
                raise UserError(f"--set: bad key '{key}'")
            name, idx = m.group(1), m.group(2)
            last = j == len(parts) - 1
            if idx is None:
                if last:
                    node[name] = value
                else:
                    node[name] = dict(node.get(name) or {})
                    node = node[name]
            else:
                items = list(node.get(name) or [])
                i = int(idx)
                if i >= len(items):
                    raise UserError(f"--set: '{key}': there is no item {i} in '{name}'")
                if last:
                    items[i] = value
                else:
                    items[i] = dict(items[i])
                node[name] = items
                if not last:
                    node = items[i]
    return data


def _expand_env(value):
    """Expand ``$VAR`` / ``${VAR}`` in every string of a raw config (paths to data and models)."""
    import os

    if isinstance(value, str):
        out = os.path.expandvars(value)
        import re

        missing = re.search(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", out)
        if missing:
            raise UserError(f"environment variable {missing.group(1)} is not set (used in '{value}')")
        return out
    if isinstance(value, dict):
        return {k: _expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v) for v in value]
    return value


#: The configs that ship inside the package (``configs/`` in a checkout links here).
PACKAGED_CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def packaged_configs() -> list[str]:
    """Names of the configs shipped with the package (``default``, ``pets09_mc``, ...)."""
    return sorted(p.stem for p in PACKAGED_CONFIGS.glob("*.yaml"))


def resolve_config(path: str | Path) -> Path:
    """A config path as given, else a packaged config of that name (``default``, ``configs/default.yaml``).

    Raises:
        UserError: neither a file nor a packaged config of that name exists.
    """
    path = Path(path)
    if path.is_file():
        return path
    for name in (path.name, path.name + ".yaml"):
        candidate = PACKAGED_CONFIGS / name
        if candidate.suffix == ".yaml" and candidate.is_file():
            return candidate
    raise UserError(f"config file not found: {path} (packaged configs: {', '.join(packaged_configs())})")


def load_yaml(path: str | Path, cls=TrackConfig, overrides: list[str] | None = None, check=None):
    """Load a YAML config file (or a packaged config by name) into ``cls``; errors name the file and the key.

    ``check``: cross-field checks run on the result (``check_run_config``, say); their errors name the file too.
    """
    try:
        import yaml
    except ImportError:  # pragma: no cover - the [models] extra and requirements.txt install it
        raise UserError("reading YAML configs needs PyYAML: pip install pyyaml (or mctrack[models])") from None

    path = resolve_config(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError(f"config file {path}: expected a mapping at the top level")
    data = _expand_env(data)
    if overrides:
        data = apply_overrides(data, overrides)
    try:
        cfg = from_dict(cls, data)
        if check is not None:
            check(cfg)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    return cfg

