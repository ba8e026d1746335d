"""Signal injection: one pseudo-experiment's events."""

from __future__ import annotations

import numpy as np
import pandas as pd


def inject(
    background: pd.DataFrame, signal_pool: pd.DataFrame, n_signal: int, rng: np.random.Generator
) -> pd.DataFrame:
    """All background plus ``n_signal`` signal events drawn from the pool without replacement.

    ``event_id`` identifies each event (background first, then signal by pool index), so folds
    and scores can be traced back to the source events.
    """
    if n_signal > len(signal_pool):
        raise ValueError(
            f"injection of {n_signal} signal events asks for more than the signal pool holds "
            f"({len(signal_pool)}); raise data.signal_pool or lower the injection"
        )
    picked = np.sort(rng.choice(len(signal_pool), size=n_signal, replace=False))
    bkg = background.assign(event_id=np.arange(len(background), dtype=np.int64))
    sig = signal_pool.iloc[picked].assign(event_id=len(background) + picked.astype(np.int64))
    return pd.concat([bkg, sig], ignore_index=True)
