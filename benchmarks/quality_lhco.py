"""Classifier quality on real LHCO R&D events: the idealized anomaly detector.

    python benchmarks/quality_lhco.py ../shared/data/lhco_rd_sr --seeds 5 [--backend nn|bdt|both]
        [--batch-size 1024 --learning-rate 0.0028 --precision bf16-mixed]   # the fast GPU setting

Training: all of ``innerdata_train`` (SR data, S/B about 0.6 %) as label 1 against the
background-labelled events of ``innerdata_val`` as label 0; scored on ``innerdata_test`` with truth.
Prints max SIC (with a floor of 20 and of 50 background events passing), SIC at signal efficiency
0.2 and 0.3, and AUC for every seed, then the median and spread.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from slidescan.data import FEATURES, read_cathode_npy
from slidescan.stats.metrics import sic_figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lhco_dir")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--backend", choices=["nn", "bdt", "both"], default="both")
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--n-best", type=int, default=0)
    parser.add_argument("--precision", default="32", help='"32" or "bf16-mixed" (networks)')
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="append the per-seed results to this file")
    args = parser.parse_args()

    train = read_cathode_npy(f"{args.lhco_dir}/innerdata_train.npy")
    val = read_cathode_npy(f"{args.lhco_dir}/innerdata_val.npy")
    test = read_cathode_npy(f"{args.lhco_dir}/innerdata_test.npy")
    ref = val[val["label"] == 0]
    x = np.concatenate([train[FEATURES].to_numpy(), ref[FEATURES].to_numpy()])
    y = np.concatenate([np.ones(len(train)), np.zeros(len(ref))])
    x_test, y_test = test[FEATURES].to_numpy(), test["label"].to_numpy()
    print(f"idealized AD: {len(train)} SR data ({int(train['label'].sum())} signal) vs {len(ref)} background; "
          f"test {len(test)} events ({int(y_test.sum())} signal)")

    backends = ["nn", "bdt"] if args.backend == "both" else [args.backend]
    rows = []
    for backend in backends:
        for seed in range(args.seeds):
            seeds = [1000 * seed + m for m in range(args.members)]
            t0 = time.time()
            if backend == "nn":
                from slidescan.backends.nn.engine import NNSettings, train_ensemble
                settings = NNSettings.from_config(dict(members=args.members, epochs=args.epochs, batch_size=args.batch_size,
                                      learning_rate=args.learning_rate, n_best=args.n_best, threads=args.threads,
                                      precision=args.precision))
                model = train_ensemble(x, y, None, settings, seeds, log=lambda s: None)
            else:
                from slidescan.backends.bdt import BDTSettings, train_bdt_ensemble
                model = train_bdt_ensemble(x, y, None, BDTSettings.from_config(dict(members=args.members)), seeds, log=lambda s: None)
            figures = sic_figures(y_test, model.predict(x_test))
            row = {"backend": backend, "seed": seed, "seconds": round(time.time() - t0, 1), **figures}
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.json:
                with open(args.json, "a") as handle:
                    handle.write(json.dumps({**row, "settings": vars(args)}) + "\n")
    print("\n| backend | max SIC (>=20 bkg) | max SIC (>=50 bkg) | SIC at eff 0.2 | SIC at eff 0.3 | AUC |")
    print("|---|---|---|---|---|---|")
    for backend in backends:
        sub = [r for r in rows if r["backend"] == backend]
        cells = []
        for key in ("max_sic_20", "max_sic_50", "sic_at_0.2", "sic_at_0.3", "auc"):
            values = np.array([r[key] for r in sub])
            cells.append(f"{np.median(values):.3g} ({values.min():.3g}-{values.max():.3g})")
        print(f"| {backend} ({len(sub)} seeds, {args.members} members) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
