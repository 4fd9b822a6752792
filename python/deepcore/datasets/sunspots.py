"""Yearly sunspot numbers, 1700-2008 (309 values), shipped with the package.

A small real time series for sequence models: the yearly mean number of sunspots, with its
roughly 11-year cycle.

Source: the National Geophysical Data Center (NOAA),
http://www.ngdc.noaa.gov/stp/solar/solarda3.html, as distributed in statsmodels
(`statsmodels/datasets/sunspots/sunspots.csv`, columns "YEAR" and "SUNACTIVITY").
Licence: public domain (statsmodels: "This data is public domain.").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["load_data"]


def load_data() -> tuple[np.ndarray, np.ndarray]:
    """Loads the yearly sunspot numbers.

    Returns:
        `(years, values)`: two float64 arrays of shape (309,): the years 1700..2008 and
        the yearly sunspot numbers (>= 0, one decimal from 1749 on). Make windows for a
        model with `deepcore.utils.timeseries_windows`, e.g.
        `x, y = timeseries_windows(values[:-10], values[10:], sequence_length=10)`.
    """
    path = Path(__file__).with_name("data") / "sunspots.csv"
    data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
    return data[:, 0].copy(), data[:, 1].copy()
