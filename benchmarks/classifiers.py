"""Classifier-stage comparison of the methods on the synthetic LHCO-like benchmark (CATHODE's protocol).

(Named ``benchmarks/methods.py`` before the method layer; ``benchmarks/methods.py`` now runs the whole
method family through the workflow.)

    python benchmarks/classifiers.py --seeds 1 2 3 4 5 --injection 700 --jobs 2 --json out.jsonl

One signal region (3.3-3.7 TeV, sidebands 0.6 TeV wide on each side) of a pseudo-dataset of 1 M
background events plus ``--injection`` signal events. Each method trains on two thirds of the SR
data (as one fold of a 3-fold scan would) against its reference:

- cwola: the sideband data;            - cathode: samples of a flow fitted in the sidebands;
- idealized: true SR background;        - supervised: true signal vs true background.

Scored on an independent truth-labelled test set (SR background and signal): max SIC (20- and
50-background-event floors), SIC at signal efficiency 0.2 and 0.3, AUC. For cathode and idealized
also the AUC of held-out SR data against held-out reference events: 0.5 when the reference is
the SR background, which is the closure test at injection 0. ``--noise-features N`` appends N
standard-normal features to every event (the "Back to the Roots" robustness test).
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

from slidescan.data import FEATURES, SyntheticModel, generate_background, generate_signal
from slidescan.stats.metrics import sic_figures
from slidescan.seeds import derive_seed, rng
from slidescan.windows import REGION_SR, Window

WINDOW = Window(0, 2.7, 3.3, 3.7, 4.3)


def features(df, noise: int, generator) -> np.ndarray:
    x = df[FEATURES].to_numpy()
    return np.hstack([x, generator.normal(size=(len(x), noise))]) if noise else x


def run_seed(args: argparse.Namespace, seed: int) -> list[dict]:
    import torch

    torch.set_num_threads(1)
    from slidescan.density.flows import FlowSettings, sample_sr_mjj, train_flow
    from slidescan.density.sideband_flow import closure_auc
    from slidescan.backends.nn.engine import NNSettings, train_ensemble
    from slidescan.backends.bdt import BDTSettings, train_bdt_ensemble

    model = SyntheticModel.from_config(json.loads(args.model))
    noise_rng = rng(seed, "noise")
    bkg = generate_background(args.n_background, model, rng(seed, "background"))
    sig = generate_signal(args.injection, model, rng(seed, "signal"))
    data = bkg if args.injection == 0 else pd.concat([bkg, sig], ignore_index=True)
    region = WINDOW.region(data["mjj"].to_numpy())
    sr, sb = data[region == REGION_SR], data[(region == -1) | (region == 1)]
    n_sig_sr = int(sr["label"].sum())
    # independent truth samples: the idealized / supervised references and the test set
    ref_bkg = generate_background(args.n_background, model, rng(seed, "reference"))
    ref_bkg = ref_bkg[WINDOW.region(ref_bkg["mjj"].to_numpy()) == REGION_SR]
    ref_sig = generate_signal(20000, model, rng(seed, "reference_signal"))
    test_bkg = generate_background(2 * args.n_background, model, rng(seed, "test"))
    test_bkg = test_bkg[WINDOW.region(test_bkg["mjj"].to_numpy()) == REGION_SR]
    test_sig = generate_signal(20000, model, rng(seed, "test_signal"))
    test_sig = test_sig[WINDOW.region(test_sig["mjj"].to_numpy()) == REGION_SR]
    x_test = np.concatenate([features(test_bkg, args.noise_features, noise_rng),
                             features(test_sig, args.noise_features, noise_rng)])
    y_test = np.concatenate([np.zeros(len(test_bkg)), np.ones(len(test_sig))])

    x_sr = features(sr, args.noise_features, noise_rng)
    x_sb = features(sb, args.noise_features, noise_rng)
    hold = rng(seed, "holdout").random(len(x_sr)) < 1 / 3  # the third a 3-fold model would score
    info = {"seed": seed, "injection": args.injection, "noise_features": args.noise_features,
            "n_sr": len(sr), "n_signal_sr": n_sig_sr, "s_over_b": n_sig_sr / max(1, len(sr) - n_sig_sr),
            "s_over_sqrt_b": n_sig_sr / np.sqrt(max(1, len(sr) - n_sig_sr))}

    references: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    if "cwola" in args.methods:
        references["cwola"] = (x_sb, None)
    if "cathode" in args.methods:
        t0 = time.time()
        settings = FlowSettings.from_config(json.loads(args.flow))
        subset = np.arange(len(x_sb))
        if settings.max_train_events and len(subset) > settings.max_train_events:
            subset = np.sort(rng(seed, "flow_subset").choice(len(subset), settings.max_train_events, replace=False))
        flow = train_flow(x_sb[subset], sb["mjj"].to_numpy()[subset], settings, derive_seed(seed, "flow"),
                          log=lambda s: None)
        n = int(round(settings.oversampling * len(sr)))
        mjj = sample_sr_mjj(sr["mjj"].to_numpy(), n, WINDOW.sr_lo, WINDOW.sr_hi, derive_seed(seed, "mjj"))
        samples = flow.sample(mjj, derive_seed(seed, "samples"))
        held = subset[flow.validation_index]
        sb_check = flow.sample(sb["mjj"].to_numpy()[held], derive_seed(seed, "closure"))
        info["flow_seconds"] = round(time.time() - t0, 1)
        info["flow_sb_auc"] = closure_auc(np.column_stack([sb["mjj"].to_numpy()[held], x_sb[held]]),
                                          np.column_stack([sb["mjj"].to_numpy()[held], sb_check]), seed)
        info["flow_best_val_nll"] = flow.best_val_loss
        references["cathode"] = (samples, np.full(n, 1 / settings.oversampling))
    if "idealized" in args.methods:
        references["idealized"] = (features(ref_bkg, args.noise_features, noise_rng), None)

    rows = []
    for backend in args.backends:
        for method in args.methods:
            t0 = time.time()
            if method == "supervised":
                x1 = features(ref_sig[WINDOW.region(ref_sig["mjj"].to_numpy()) == REGION_SR], args.noise_features,
                              noise_rng)
                x0, w0 = features(ref_bkg, args.noise_features, noise_rng), None
                x0_hold = np.zeros((0, x0.shape[1]))
            else:
                x1 = x_sr[~hold]
                x0_all, w0_all = references[method]
                ref_hold = rng(seed, "ref_holdout", method).random(len(x0_all)) < 1 / 3
                if method == "cwola":
                    ref_hold[:] = False  # the sidebands are not an SR reference: nothing to close on
                x0, w0 = x0_all[~ref_hold], (None if w0_all is None else w0_all[~ref_hold])
                x0_hold = x0_all[ref_hold]
            x = np.concatenate([x1, x0])
            y = np.concatenate([np.ones(len(x1)), np.zeros(len(x0))])
            w = np.concatenate([np.ones(len(x1)), np.ones(len(x0)) if w0 is None else w0])
            seeds = [derive_seed(seed, method, backend, m) for m in range(args.members)]
            if backend == "nn":
                settings = NNSettings.from_config(dict(members=args.members, epochs=args.epochs, batch_size=args.batch_size,
                                      learning_rate=args.learning_rate, threads=1))
                clf = train_ensemble(x, y, w, settings, seeds, log=lambda s: None)
            else:
                clf = train_bdt_ensemble(x, y, w, BDTSettings.from_config(dict(members=args.members)), seeds,
                                         log=lambda s: None)
            row = {**info, "method": method, "backend": backend, "seconds": round(time.time() - t0, 1),
                   **sic_figures(y_test, clf.predict(x_test))}
            if len(x0_hold):
                from sklearn.metrics import roc_auc_score

                s_data, s_ref = clf.predict(x_sr[hold]), clf.predict(x0_hold)
                row["sr_auc_data_vs_reference"] = float(roc_auc_score(
                    np.concatenate([np.ones(len(s_data)), np.zeros(len(s_ref))]), np.concatenate([s_data, s_ref])))
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--injection", type=int, default=700, help="signal events injected over the whole range")
    parser.add_argument("--n-background", type=int, default=1_000_000)
    parser.add_argument("--methods", nargs="+", default=["cwola", "cathode", "idealized", "supervised"])
    parser.add_argument("--backends", nargs="+", default=["nn", "bdt"])
    parser.add_argument("--noise-features", type=int, default=0)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--flow", default=json.dumps({"transforms": 8, "hidden": [128], "epochs": 30, "batch_size": 512,
                                                      "learning_rate": 5e-4, "n_best": 5,
                                                      "max_train_events": 200000}),
                        help="flow settings as JSON (keys of the config's flow section)")
    parser.add_argument("--model", default="{}", help="synthetic model overrides as JSON (docs/synthetic.md)")
    parser.add_argument("--jobs", type=int, default=1, help="seeds run in parallel processes")
    parser.add_argument("--json", help="append every result row to this JSON-lines file")
    args = parser.parse_args()

    with ProcessPoolExecutor(args.jobs) as pool:
        rows = [r for rs in pool.map(run_seed, [args] * len(args.seeds), args.seeds) for r in rs]
    if args.json:
        with open(args.json, "a") as handle:
            for row in rows:
                handle.write(json.dumps({**row, "settings": {k: v for k, v in vars(args).items() if k != "json"}}) + "\n")
    print(summary_table(rows))


def summary_table(rows: list[dict]) -> str:
    """Median (min-max) over seeds per method and backend."""
    import pandas as pd

    df = pd.DataFrame(rows)
    lines = ["| method | backend | seeds | max SIC (>=20 bkg) | max SIC (>=50 bkg) | SIC at 0.3 | AUC | "
             "SR AUC data vs reference |", "|---|---|---|---|---|---|---|---|"]
    for (method, backend), grp in df.groupby(["method", "backend"], sort=False):
        cells = []
        for key in ("max_sic_20", "max_sic_50", "sic_at_0.3", "auc", "sr_auc_data_vs_reference"):
            v = grp[key].dropna().to_numpy() if key in grp else np.array([])
            cells.append(f"{np.median(v):.3g} ({v.min():.3g}-{v.max():.3g})" if len(v) else "-")
        lines.append(f"| {method} | {backend} | {len(grp)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
