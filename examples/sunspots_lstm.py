"""Forecasts the yearly sunspot numbers one year ahead with an LSTM.

The series (1700-2008, shipped with deepcore) is scaled to [0, 1]; windows of the last
`WINDOW` years predict the next one. The last `TEST_YEARS` years are held out; the test
error is compared with the naive forecast "next year = this year".

    python examples/sunspots_lstm.py            # ~1 s on one core
    SUNSPOTS_EPOCHS=20 python examples/sunspots_lstm.py
"""

import os
import time

import numpy as np

import deepcore as dc

WINDOW = 12
TEST_YEARS = 60


def main(epochs=None, verbose=True):
    """Trains and evaluates the model; returns (test MAE of the LSTM, of the naive
    forecast), both in sunspot numbers."""
    epochs = int(epochs or os.environ.get("SUNSPOTS_EPOCHS", 40))
    dc.utils.set_random_seed(0)
    years, values = dc.datasets.sunspots.load_data()
    split = len(values) - TEST_YEARS
    scale = values[:split].max()
    series = (values / scale).astype("float32")[:, None]  # (309, 1): one feature per step

    # x[k] = series[k : k + WINDOW], y[k] = series[k + WINDOW], for every year from the
    # 13th to the last (the data ends one step early: the last window's target is the last year).
    x, y = dc.utils.timeseries_windows(series[:-1], series[WINDOW:], sequence_length=WINDOW)
    target_year = years[WINDOW:][: len(y)]
    train = target_year < years[split]
    x_train, y_train, x_test, y_test = x[train], y[train], x[~train], y[~train]

    model = dc.Sequential(
        [
            dc.Input(shape=(WINDOW, 1)),
            dc.layers.LSTM(32),
            dc.layers.Dense(1),
        ]
    )
    model.compile(optimizer=dc.optimizers.Adam(3e-3), loss="mse", metrics=["mae"])
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=16, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - start

    forecast = model.predict(x_test, verbose=0)
    mae = float(np.abs(forecast - y_test).mean() * scale)
    naive = float(np.abs(x_test[:, -1] - y_test).mean() * scale)  # last value carried on
    if verbose:
        print(
            f"train windows: {len(x_train)}, test windows: {len(x_test)} "
            f"({int(target_year[~train][0])}-{int(target_year[~train][-1])})"
        )
        print(f"training: {epochs} epochs in {seconds:.1f} s")
        print(f"test MAE, LSTM:            {mae:6.2f} sunspots")
        print(f"test MAE, last-value naive: {naive:6.2f} sunspots")
        print(f"the LSTM's error is {100 * (1 - mae / naive):.0f}% below the naive forecast's")
    return mae, naive


if __name__ == "__main__":
    main()
