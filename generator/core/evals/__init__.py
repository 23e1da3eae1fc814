"""Measuring codes and engines: parameter grids, sweep statistics, plots, agreement with human labels.
Imports `generator.core.codes` and `generator.core.engines`."""
