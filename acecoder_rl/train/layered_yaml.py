"""Strict YAML files that can extend one another, remembering which file set each key.

Run configs and sweep grids are YAML mappings. A file may say ``extends: base.yaml`` (a path relative to the
file itself): the base is loaded first (recursively) and the file's keys are deep-merged over it. Mappings
merge key by key; anything else (scalars, lists, ``null``) replaces what the base had, so a list is never
half-inherited. Every key path remembers the file that last set it, so a bad value is reported against the
file a person has to edit, not against the leaf file that merely inherited it.

Duplicate keys are an error (PyYAML would silently keep the last one, hiding a typo'd override).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from acecoder_rl.errors import AcecoderError

KeyPath = tuple[str, ...]
EXTENDS = "extends"


class ConfigFileError(AcecoderError):
    """A config file that cannot be read, parsed or merged; the message names the file."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys in a mapping."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


@dataclass
class LayeredYaml:
    """The merged mapping of a file and its ``extends`` chain, plus where each key path came from."""

    path: Path
    data: dict[str, Any]
    origins: dict[KeyPath, Path] = field(default_factory=dict)

    def origin(self, key: KeyPath) -> Path:
        """The file that set ``key`` (or its nearest ancestor that was set); the leaf file otherwise."""
        for end in range(len(key), 0, -1):
            found = self.origins.get(key[:end])
            if found is not None:
                return found
        return self.path


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """One YAML file that must hold a mapping (an empty file is an empty mapping)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f":{mark.line + 1}:{mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigFileError(f"{path}{where}: invalid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigFileError(f"{path}: expected a YAML mapping at the top level, got {type(data).__name__}")
    for key in data:
        if not isinstance(key, str):
            raise ConfigFileError(f"{path}: top-level key {key!r} is not a string")
    return data


def load_layered(path: str | Path) -> LayeredYaml:
    """Load ``path`` with its ``extends`` chain merged in (the ``extends`` key itself is consumed)."""
    return _load(Path(path), stack=())


def _load(path: Path, stack: tuple[Path, ...]) -> LayeredYaml:
    resolved = path.resolve()
    if resolved in stack:
        chain = " -> ".join(str(p) for p in (*stack, resolved))
        raise ConfigFileError(f"{path}: 'extends' cycle: {chain}")
    own = read_yaml_mapping(path)
    parent_ref = own.pop(EXTENDS, None)
    if parent_ref is None:
        merged = LayeredYaml(path=path, data={})
    else:
        if not isinstance(parent_ref, str) or not parent_ref.strip():
            raise ConfigFileError(f"{path}: 'extends' must be a path to another YAML file, got {parent_ref!r}")
        parent_path = Path(parent_ref)
        if not parent_path.is_absolute():
            parent_path = path.parent / parent_path  # relative to the extending file, not to the cwd
        if not parent_path.is_file():
            raise ConfigFileError(f"{path}: extends: {parent_ref!r} not found (looked for {parent_path})")
        merged = _load(parent_path, (*stack, resolved))
        merged.path = path
    merge_into(merged, own, path)
    return merged


def merge_into(layered: LayeredYaml, override: dict[str, Any], source: Path, prefix: KeyPath = ()) -> None:
    """Deep-merge ``override`` (set in file ``source``) into ``layered`` in place, recording origins."""
    target = layered.data
    for key in prefix:
        target = target[key]
    for key, value in override.items():
        path = (*prefix, str(key))
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            layered.origins[path] = source
            merge_into(layered, value, source, path)
            continue
        # A replacement: whatever the base had below this key no longer exists, nor do its origins.
        for old in [p for p in layered.origins if p[: len(path)] == path and len(p) > len(path)]:
            del layered.origins[old]
        target[key] = _copy(value)
        layered.origins[path] = source
        if isinstance(value, dict):
            _record_all(layered.origins, value, source, path)


def _record_all(origins: dict[KeyPath, Path], value: dict, source: Path, prefix: KeyPath) -> None:
    for key, sub in value.items():
        origins[(*prefix, str(key))] = source
        if isinstance(sub, dict):
            _record_all(origins, sub, source, (*prefix, str(key)))


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def nested(dotted: str, value: Any) -> dict[str, Any]:
    """``{"a": {"b": value}}`` for ``"a.b"``: the partial mapping that overriding one key path means."""
    data: dict[str, Any] = {}
    node = data
    keys = dotted.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    return data
