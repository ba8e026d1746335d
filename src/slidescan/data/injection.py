"""Signal injection: one pseudo-experiment's events."""

from __future__ import annotations

import numpy as np
import pandas as pd


def inject(
    background: pd.DataFrame, signal_pool: pd.DataFrame, n_signal: int, rng: np.random.Generator,
    pool: str = "the signal pool (data.signal_pool)",
) -> pd.DataFrame:
    """All background plus ``n_signal`` signal events drawn from the pool without replacement.

    ``event_id`` identifies each event (background first, then signal by pool index), so folds
    and scores can be traced back to the source events. ``pool`` names the pool in the error.
    """
    if n_signal > len(signal_pool):
        raise ValueError(
            f"injection of {n_signal} signal events asks for more than {pool} holds ({len(signal_pool)}); "
            "lower the injection or give the pool more events"
        )
    picked = np.sort(rng.choice(len(signal_pool), size=n_signal, replace=False))
    bkg = background.assign(event_id=np.arange(len(background), dtype=np.int64))
    sig = signal_pool.iloc[picked].assign(event_id=len(background) + picked.astype(np.int64))
    return pd.concat([bkg, sig], ignore_index=True)
