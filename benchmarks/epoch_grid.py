"""How many batched models a training job needs: do the seeds of a window share one epoch length?

    python benchmarks/epoch_grid.py [--scale full|cpu] [--batch-size 1024] [--json FILE]

A training job (one window, method and injection) trains every seed's folds as one model when
their epoch lengths (``backends.nn.nn_epoch_events``: the largest fold's training split, rounded up
to the grid of batch counts ``ceil(1.01**j)``) agree; seeds on another grid point train as a
further model of the job. This builds issue 6's full-scale scan in memory, with the same data,
injections, folds and windows as ``benchmarks/fullscale.py`` (the flow samples' count and folds as
the sideband flow model makes them, without training a flow), and counts the models per job and the
extra draws the rounding adds. Nothing is trained and nothing is written.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fullscale import SCALES, SHAPE, WINDOWS  # noqa: E402  (the scan's shape, one place)

from slidescan import data as data_mod  # noqa: E402
from slidescan.backends.nn import NNSettings, n_train_events, nn_epoch_events  # noqa: E402
from slidescan.methods import TrainingSet  # noqa: E402
from slidescan.seeds import rng  # noqa: E402
from slidescan.windows import REGION_SR, assign_folds, window_grid  # noqa: E402


def sized(n: int) -> TrainingSet:
    """A training set of n events; only its size matters for the epoch length."""
    return TrainingSet(np.empty((n, 0)), np.empty(n), np.empty(n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--batch-size", type=int, help="default: the scale's classifier batch size")
    parser.add_argument("--json", help="append the result line to this file")
    args = parser.parse_args()
    scale = SCALES[args.scale]
    batch = args.batch_size or scale["nn"]["batch_size"]
    settings = NNSettings.from_config(dict(batch_size=batch))
    k, base, oversampling = SHAPE["folds"], 1, 4
    started = time.time()
    model = data_mod.SyntheticModel.from_config(None)
    d = scale["data"]
    background = data_mod.generate_background(d["n_background"], model, rng(base, "background"))
    pool = data_mod.generate_signal(d["signal_pool"], model, rng(base, "signal_pool"))
    ref_bkg = data_mod.generate_background(d["reference_background"], model, rng(base, "reference_background"))
    ref_fold = assign_folds(len(ref_bkg), k, rng(base, "folds", "reference_background"))
    windows = window_grid(WINDOWS)
    seeds = list(range(1, scale["seeds"] + 1))
    epochs: dict[tuple, int] = {}
    padding = []
    for injection in scale["injections"]:
        for seed in seeds:
            df = data_mod.inject(background, pool, int(injection), rng(base, "inject", injection, seed))
            fold = assign_folds(len(df), k, rng(base, "folds", injection, seed))
            mjj = df["mjj"].to_numpy()
            for w in windows:
                region = w.region(mjj)
                in_window, in_sr = region != 2, region == REGION_SR
                window_folds = np.bincount(fold[in_window], minlength=k)
                sr_folds = np.bincount(fold[in_sr], minlength=k)
                ref_sr = np.bincount(ref_fold[w.region(ref_bkg["mjj"].to_numpy()) == REGION_SR], minlength=k)
                n_samples = int(round(oversampling * in_sr.sum()))
                sample_folds = np.bincount(np.arange(n_samples) % k, minlength=k)  # balanced, as assign_folds
                sizes = {
                    "cwola-nn": window_folds.sum() - window_folds,
                    "idealized-nn": (sr_folds.sum() - sr_folds) + (ref_sr.sum() - ref_sr),
                    "cathode-nn": (sr_folds.sum() - sr_folds) + (sample_folds.sum() - sample_folds),
                }
                for method, per_fold in sizes.items():
                    events = nn_epoch_events(settings, [sized(int(n)) for n in per_fold])
                    epochs[(w.name, method, injection, seed)] = events
                    padding.append(events / max(n_train_events(int(n), settings) for n in per_fold) - 1)
    models = Counter()
    for w in windows:
        for method in SHAPE["methods"]:
            for injection in scale["injections"]:
                models[len({epochs[(w.name, method, injection, s)] for s in seeds})] += 1
    jobs = sum(models.values())
    result = {
        "date": time.strftime("%Y-%m-%d"), "host": platform.node(), "scale": args.scale, "batch_size": batch,
        "training_jobs": jobs, "seeds_per_job": len(seeds), "folds": k,
        "jobs_by_models": {str(n): c for n, c in sorted(models.items())},
        "models_per_job_mean": round(sum(n * c for n, c in models.items()) / jobs, 3),
        "extra_draws_percent_median": round(100 * float(np.median(padding)), 3),
        "extra_draws_percent_max": round(100 * float(np.max(padding)), 3),
        "seconds": round(time.time() - started, 1),
    }
    line = json.dumps(result)
    print(line)
    if args.json:
        with open(args.json, "a") as handle:
            handle.write(line + "\n")


if __name__ == "__main__":
    main()
