"""What the synthetic simulation's mismodelling presets do (docs/synthetic.md, "A simulation").

For each preset (data.samples.<name>.mismodelling: none, mild, strong): the data's background and a simulation of the
same size, in the sidebands and the SR of one window; the mean of each feature in both, and the AUC of a classifier
of simulation vs data (gradient-boosted trees, 2-fold out-of-fold scores) in each region: 0.5 is a perfect
simulation. Draws docs/simulation_presets.png (data vs simulation in the SR, per preset).

    python benchmarks/simulation_presets.py [--events 300000] [--sr 3.3 3.7] [--sb-width 0.3]

Prints one JSON line per preset and region.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def auc_vs(data: pd.DataFrame, sim: pd.DataFrame, features: list[str], seed: int) -> float:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import cross_val_predict

    x = np.concatenate([data[features].to_numpy(), sim[features].to_numpy()])
    y = np.concatenate([np.zeros(len(data)), np.ones(len(sim))])
    scores = cross_val_predict(HistGradientBoostingClassifier(max_iter=100, random_state=seed), x, y, cv=2,
                               method="predict_proba")[:, 1]
    return float(roc_auc_score(y, scores))


def main(argv=None) -> int:
    from slidescan.data import FEATURES
    from slidescan.data.synthetic import MISMODELLING, SyntheticModel, generate_background, generate_simulation

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--sr", type=float, nargs=2, default=(3.3, 3.7))
    parser.add_argument("--sb-width", type=float, default=0.3)
    parser.add_argument("--figure", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "simulation_presets.png")
    ns = parser.parse_args(argv)
    model = SyntheticModel.from_config(None)
    data = generate_background(ns.events, model, np.random.default_rng(1))
    lo, hi = ns.sr
    regions = {"SR": lambda m: (m >= lo) & (m < hi),
               "sidebands": lambda m: ((m >= lo - ns.sb_width) & (m < lo)) | ((m >= hi) & (m < hi + ns.sb_width))}
    sims = {p: generate_simulation(ns.events, model, p, np.random.default_rng(2)) for p in MISMODELLING}
    for preset, sim in sims.items():
        for region, inside in regions.items():
            d, s = data[inside(data["mjj"])], sim[inside(sim["mjj"])]
            row = {"preset": preset, "region": region, "data_events": len(d), "simulation_events": len(s),
                   "auc_simulation_vs_data": round(auc_vs(d, s, FEATURES, 0), 4),
                   **{f"mean_{f}": [round(float(d[f].mean()), 4), round(float(s[f].mean()), 4)] for f in FEATURES}}
            print(json.dumps(row))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(sims), len(FEATURES), figsize=(4 * len(FEATURES), 3 * len(sims)))
    sr = regions["SR"]
    for row, (preset, sim) in enumerate(sims.items()):
        for col, feature in enumerate(FEATURES):
            ax = axes[row, col]
            d, s = data.loc[sr(data["mjj"]), feature], sim.loc[sr(sim["mjj"]), feature]
            bins = np.linspace(*np.quantile(pd.concat([d, s]), [0.005, 0.995]), 50)
            ax.hist(d, bins, histtype="step", density=True, label="data (background)")
            ax.hist(s, bins, histtype="step", density=True, label=f"simulation ({preset})")
            ax.set_xlabel(feature)
            if col == 0:
                ax.set_ylabel(f"{preset}: density in the SR")
                ax.legend(fontsize=7)
    fig.suptitle(f"data vs simulation in the SR {lo}-{hi} TeV, per mismodelling preset")
    fig.tight_layout()
    fig.savefig(ns.figure, dpi=80)
    return 0


if __name__ == "__main__":
    sys.exit(main())
