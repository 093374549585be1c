"""Ablation grids: a base run config and axes, expanded into one named run config per combination.

A grid file::

    base: ../paper/reinforce_pp_coder7b_base.yaml    # relative to the grid file
    name: abl                                         # run names: abl-<value>-<value>-...
    overrides: {checkpoints: {save_steps: 20}}        # applied to every run (optional)
    axes:                                             # in order; the product of their values
      estimator:                                      # named values, each a partial run config
        values:
          rloo: {algorithm: {name: rloo}}
          grpo: {algorithm: {name: grpo, kl_as_loss: true, kl_estimator: k3}}
      kl:                                             # one key, plain values (named kl0.0, kl0.01)
        key: algorithm.kl_coef
        values: [0.0, 0.01]
    exclude:                                          # combinations to leave out (optional)
      - {estimator: grpo, kl: kl0.0}

Every expanded run is validated like a hand-written config; an impossible combination is an error naming
the run and the key (leave it out with ``exclude``), never a run that fails hours later.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from acecoder_rl.errors import AcecoderError
from acecoder_rl.train.config import RunConfig, run_config_from_layers
from acecoder_rl.train.layered_yaml import load_layered, merge_into, nested, read_yaml_mapping


class Axis(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str | None = Field(None, description="Dotted key that the plain values set (a.b.c).")
    values: dict[str, dict[str, Any]] | list[Any] = Field(description="Named partial configs, or plain values.")

    @model_validator(mode="after")
    def _shape(self) -> Axis:
        if self.key is None and not isinstance(self.values, dict):
            raise ValueError("a list of plain values needs 'key' (the dotted key they set)")
        if self.key is not None and not isinstance(self.values, list):
            raise ValueError("with 'key', 'values' is a list of plain values")
        if self.key is not None and not all(self.key.split(".")):
            raise ValueError(f"key {self.key!r} must be names separated by dots (algorithm.kl_coef)")
        if not self.values:
            raise ValueError("an axis needs at least one value")
        return self

    def named_overrides(self, axis_name: str) -> dict[str, dict[str, Any]]:
        """``{value name: partial config}``; plain values are named ``<axis><value>`` (``kl0.01``)."""
        if isinstance(self.values, dict):
            return self.values
        return {f"{axis_name}{value}": nested(self.key, value) for value in self.values}


class Grid(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base: str
    name: str
    overrides: dict[str, Any] = Field(default_factory=dict)
    axes: dict[str, Axis]
    exclude: list[dict[str, str]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Grid:
        if not self.axes:
            raise ValueError("a grid needs at least one axis")
        for rule in self.exclude:
            for axis, value in rule.items():
                if axis not in self.axes:
                    raise ValueError(f"exclude names unknown axis {axis!r}")
                if value not in self.axes[axis].named_overrides(axis):
                    raise ValueError(f"exclude: axis {axis!r} has no value {value!r}")
        return self


@dataclass(frozen=True)
class ExpandedRun:
    name: str
    choices: dict[str, str]
    """Axis -> value name."""
    data: dict[str, Any]
    """The merged config (no ``extends``), as written to the run's YAML file."""
    config: RunConfig


def load_grid(path: str | Path) -> tuple[Grid, Path]:
    path = Path(path)
    raw = read_yaml_mapping(path)
    try:
        return Grid.model_validate(raw), path
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise AcecoderError(f"{path}: {key}: {err['msg']}") from None


def expand_grid(path: str | Path) -> list[ExpandedRun]:
    """Every run of the grid, in axis order, each validated."""
    grid, path = load_grid(path)
    base_path = Path(grid.base) if Path(grid.base).is_absolute() else path.parent / grid.base
    if not base_path.is_file():
        raise AcecoderError(f"{path}: base: {grid.base!r} not found (looked for {base_path})")
    axes = {name: axis.named_overrides(name) for name, axis in grid.axes.items()}
    runs = []
    for combo in itertools.product(*(list(values) for values in axes.values())):
        choices = dict(zip(axes, combo))
        if any(all(choices[a] == v for a, v in rule.items()) for rule in grid.exclude):
            continue
        name = "-".join([grid.name, *combo])
        layered = load_layered(base_path)
        merge_into(layered, grid.overrides, path)
        for axis, value in choices.items():
            merge_into(layered, axes[axis][value], path)
        merge_into(layered, {"name": name}, path)
        layered.data = {"name": name, **{k: v for k, v in layered.data.items() if k != "name"}}
        try:
            config = run_config_from_layers(layered)
        except AcecoderError as exc:
            raise AcecoderError(f"{path}: run {name} ({_describe(choices)}): {exc}") from None
        runs.append(ExpandedRun(name, choices, layered.data, config))
    if not runs:
        raise AcecoderError(f"{path}: every combination is excluded")
    return runs


def _describe(choices: dict[str, str]) -> str:
    return ", ".join(f"{axis}={value}" for axis, value in choices.items())


def write_runs(runs: list[ExpandedRun], grid_path: Path, out_dir: Path) -> list[Path]:
    """One self-contained YAML per run (no ``extends``: it stays what ran even if the base changes)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for run in runs:
        target = out_dir / f"{run.name}.yaml"
        header = (f"# Generated by `acecoder-rl sweep {grid_path}` ({_describe(run.choices)}).\n"
                  "# Edit the grid, not this file: the next sweep overwrites it.\n")
        target.write_text(header + yaml.safe_dump(run.data, sort_keys=False), encoding="utf-8")
        written.append(target)
    return written

