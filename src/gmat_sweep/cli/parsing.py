"""Parsing the values a command line gives: ``--grid`` options, single values, ``--samples`` tables."""

from __future__ import annotations

import os
from typing import Any

import click

from ..values import parse_value


def parse_grid_option(option: str) -> tuple[str, list[Any]]:
    """``Sat.SMA=7000:7300:4`` (inclusive, like linspace), ``Sat.INC=28.5,51.6`` or ``TOF=600``."""
    from ..gmat.script import ScriptError, check_path

    if "=" not in option:
        raise click.BadParameter(f"{option!r} has no '='; write PATH=VALUES, e.g. Sat.SMA=7000:7300:4 or "
                                 "Sat.INC=28.5,51.6", param_hint="--grid")
    path, spec = (part.strip() for part in option.split("=", 1))
    try:
        check_path(path)
    except ScriptError as exc:
        raise click.BadParameter(f"{option!r}: {exc}", param_hint="--grid") from None
    if not spec:
        raise click.BadParameter(f"{option!r} gives no values; write {path}=START:STOP:COUNT or {path}=A,B,C",
                                 param_hint="--grid")
    if ":" in spec:
        parts = spec.split(":")
        try:
            if len(parts) != 3 or not all(p.strip() for p in parts):
                raise ValueError
            start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
            if count < 1:
                raise ValueError
        except ValueError:
            raise click.BadParameter(f"{option!r}: a range is START:STOP:COUNT with numbers and a whole COUNT >= 1 "
                                     f"(inclusive, like linspace), e.g. {path}=7000:7300:4", param_hint="--grid") \
                from None
        return path, _linspace(start, stop, count, integral=all(_is_int(p) for p in parts[:2]))
    values = [parse_value(v) for v in spec.split(",")]
    if any(v == "" for v in values):
        raise click.BadParameter(f"{option!r} has an empty value; remove the extra comma", param_hint="--grid")
    return path, values


def _is_int(text: str) -> bool:
    try:
        int(text)
        return True
    except ValueError:
        return False


def _linspace(start: float, stop: float, count: int, integral: bool) -> list[Any]:
    if count == 1:
        values = [start]
    else:
        step = (stop - start) / (count - 1)
        values = [start + i * step for i in range(count - 1)] + [stop]
    if integral and all(float(v).is_integer() for v in values):
        return [int(v) for v in values]
    return [float(v) for v in values]


def read_samples(path: str) -> Any:
    import pandas as pd

    if not os.path.exists(path):
        raise click.BadParameter(f"samples file {path} not found", param_hint="--samples")
    if path.endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    if path.endswith(".csv"):
        return pd.read_csv(path)
    raise click.BadParameter(f"{path}: samples must be a .csv or .parquet file", param_hint="--samples")
