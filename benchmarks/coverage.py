"""Coverage and bias of the bump-hunt statistics (sideband dijet fit + pyhf p0).

    python benchmarks/coverage.py --toys 500 [--events 30000] [--signal 150] [--fit 3|4|ftest]

Background-only toys: mjj spectra from the synthetic background model (the classifier plays no role:
this checks the fit and the p-value), one window (SR 3.3-3.7 TeV, sidebands 0.6 TeV), no cut.
Prints the KS test of p0 against uniform (on the excess half, where p0 < 0.5 is defined), the
fraction of toys with Z > 2 (nominal 2.28 %), and for toys with a planted signal of known size the
mean and width of the pull (n_obs - n_bkg - s_true) / sqrt(n_bkg + n_bkg_err^2).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from scipy import stats as sps

from slidescan import data
from slidescan.seeds import rng
from slidescan.stats import bump_hunt
from slidescan.windows import Window

WINDOW = Window(0, 2.7, 3.3, 3.7, 4.3)


def window_events(n: int, seed: int) -> np.ndarray:
    m = data.generate_background(n, data.SyntheticModel.from_config({}), rng(seed, "coverage"))["mjj"].to_numpy()
    return m[(m >= WINDOW.sb_lo) & (m < WINDOW.sb_hi)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--toys", type=int, default=500)
    parser.add_argument("--events", type=int, default=30_000, help="background events per toy over 2.5-6 TeV")
    parser.add_argument("--signal", type=int, default=150, help="planted signal events for the bias test")
    parser.add_argument("--fit", default="3")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    fit = args.fit if args.fit == "ftest" else int(args.fit)
    t0 = time.time()
    p0, z, pulls, failed = [], [], [], 0
    for toy in range(args.toys):
        mjj = window_events(args.events, toy)
        res = bump_hunt(mjj, np.zeros_like(mjj), WINDOW, [1.0], 0.05, fit)[0]
        if not res.fit_ok:
            failed += 1
            continue
        p0.append(res.p0)
        z.append(res.z)
        sig = data.generate_signal(args.signal, data.SyntheticModel.from_config({}), rng(toy, "coverage-signal"))["mjj"].to_numpy()
        s_true = int(((sig >= WINDOW.sr_lo) & (sig < WINDOW.sr_hi)).sum())
        both = np.concatenate([mjj, sig[(sig >= WINDOW.sb_lo) & (sig < WINDOW.sb_hi)]])
        planted = bump_hunt(both, np.zeros_like(both), WINDOW, [1.0], 0.05, fit)[0]
        if planted.fit_ok:
            pulls.append((planted.n_obs - planted.n_bkg - s_true) / np.sqrt(planted.n_bkg + planted.n_bkg_err**2))
    p0, z, pulls = np.array(p0), np.array(z), np.array(pulls)
    excess = 2 * p0[p0 < 0.5]
    print(f"{args.toys} toys, {args.events} background events each ({len(window_events(args.events, 0))} "
          f"in the window), fit {args.fit}, {time.time() - t0:.0f} s; failed fits: {failed}")
    print(f"KS test of 2 p0 (p0 < 0.5) against uniform: p = {sps.kstest(excess, 'uniform').pvalue:.3f} "
          f"({len(excess)} toys with an excess, fraction {len(excess) / len(p0):.3f})")
    print(f"fraction with Z > 2: {np.mean(z > 2):.4f} (nominal {sps.norm.sf(2):.4f}); Z > 1: {np.mean(z > 1):.3f} "
          f"(nominal {sps.norm.sf(1):.3f})")
    print(f"planted signal ({args.signal} events, about {0.9 * args.signal:.0f} in the SR): pull mean {pulls.mean():+.3f} "
          f"+- {pulls.std() / np.sqrt(len(pulls)):.3f}, width {pulls.std():.3f}")


if __name__ == "__main__":
    main()
