"""Plots for the eval pages and reports, drawn with matplotlib into PNG bytes.

Plain Python, importable without Django. Modules that draw call `figure()`, draw on its axes, and hand it to
`to_png()`; pages embed the bytes (a view returns them, or a report writes them beside its HTML). Figures are made
without pyplot, so nothing global is kept between requests and no screen is needed.
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure


def figure(width: float = 6.0, height: float = 4.0) -> Figure:
    """A new figure of `width` x `height` inches at 100 dpi, laid out so labels are not cut off."""
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def to_png(fig: Figure) -> bytes:
    """The figure rendered as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
