"""Sweep grids: which generation parameters a sweep may vary, their typed values, and canonical keys.

Plain Python (no Django, no environment), so reports and notebooks can group results the same way:

    grid = parse_grid(["conditioning_scale=1.0,1.3", "control_start=0,0.15"])
    [config_key(c) for c in expand(grid)]   # "conditioning_scale=1.0, control_start=0.0", ...
"""

from __future__ import annotations

import hashlib
import itertools

from generator.core.codes import qr
from generator.core.codes.echoes import echo
from generator.core.engines import parameters


class GridError(ValueError):
    """A bad grid or parameter spec; the message is meant for the person who typed it."""


def _number(kind: type):
    def convert(text: str):
        try:
            return kind(text)
        except ValueError:
            raise ValueError(f"“{echo(text)}” is not {'a whole number' if kind is int else 'a number'}") from None

    return convert


def _optional_float(text: str) -> float | None:
    # img2img strength: "none" means text-to-image, the default.
    return None if text.lower() in ("none", "") else _number(float)(text)


def _choice(options, upper: bool = False):
    def convert(text: str) -> str:
        value = text.upper() if upper else text
        if value not in options:
            raise ValueError(f"“{echo(text)}” is not one of {', '.join(options)}")
        return value

    return convert


# The GenerationJob sampling fields. The seed is not here (derived per sample), nor the number of candidates
# (-n), nor repair and the batch budget (fixed for sweeps).
PARAMETERS = {
    "conditioning_scale": _number(float),
    "control_start": _number(float),
    "control_end": _number(float),
    "guidance_scale": _number(float),
    "steps": _number(int),
    "scheduler": _choice(parameters.SCHEDULERS),
    "strength": _optional_float,
    "size": _number(int),
    "ecc": _choice(tuple(qr.ECC_LEVELS), upper=True),
    "style": _choice(qr.STYLES),
    "background": _choice(tuple(qr.BACKGROUNDS)),
}


def _split(spec: str, option: str) -> tuple[str, str]:
    name, sep, values = spec.partition("=")
    name = name.strip()
    if not sep or not name:
        raise GridError(f"{option} “{echo(spec)}”: expected name=value")
    if name not in PARAMETERS:
        raise GridError(f"{option} “{echo(spec)}”: unknown parameter “{echo(name)}”; "
                        f"choose from {', '.join(PARAMETERS)}")
    return name, values


def parse_grid(specs: list[str]) -> dict[str, list]:
    """Parse `name=v1,v2,...` specs into the grid to sweep.

    Args:
        specs (`list[str]`): one spec per swept parameter, e.g. `["conditioning_scale=1.0,1.3", "steps=20,30"]`.

    Returns:
        `{name: [value, ...]}` in the order given, each value converted to the field's type.

    Raises:
        GridError: an unknown name, a bad or repeated value, or a parameter given twice.
    """
    grid: dict[str, list] = {}
    for spec in specs:
        name, text = _split(spec, "--grid")
        if name in grid:
            raise GridError(f"--grid: {name} is given twice; list all its values once, comma-separated")
        values, keys = [], set()
        for item in text.split(","):
            try:
                value = PARAMETERS[name](item.strip())
            except ValueError as exc:
                raise GridError(f"--grid “{echo(spec)}”: {exc}") from None
            if value_text(value) in keys:
                raise GridError(f"--grid “{echo(spec)}”: {value_text(value)} is listed twice")
            keys.add(value_text(value))
            values.append(value)
        grid[name] = values
    return grid


def parse_params(specs: list[str]) -> dict:
    """Parse `name=value` specs for the parameters every sample shares (the run's base parameters).

    Returns:
        `{name: value}`, converted like `parse_grid` does.
    """
    params: dict = {}
    for spec in specs:
        name, text = _split(spec, "--base")
        if name in params:
            raise GridError(f"--base: {name} is given twice")
        try:
            params[name] = PARAMETERS[name](text.strip())
        except ValueError as exc:
            raise GridError(f"--base “{echo(spec)}”: {exc}") from None
    return params


def value_text(value) -> str:
    """Stable text of a parameter value: 0, 0.0 and 0.000 all read "0.0"; None reads "none"."""
    if value is None:
        return "none"
    if isinstance(value, float):
        return repr(round(value, 6) + 0.0)  # + 0.0 turns -0.0 into 0.0
    return str(value)


def config_key(config: dict) -> str:
    """The canonical text of a configuration, for grouping: `"conditioning_scale=1.3, control_start=0.15"`."""
    return ", ".join(f"{name}={value_text(config[name])}" for name in sorted(config))


def expand(grid: dict[str, list]) -> list[dict]:
    """Every configuration of the grid (the cartesian product), the first parameter varying slowest."""
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*(grid[n] for n in names))]


def sample_seed(prompt: str, content: str) -> int:
    """The first seed of a sample, from its prompt and content only: every configuration draws the same seeds."""
    digest = hashlib.sha256(f"{prompt}\n{content}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 2**31
