"""A training job's folds one after another against the same folds as one batched model.

    python benchmarks/fold_batching.py [--device cpu|cuda] [--events 100000] [--folds 5] [--seeds 1]
                                       [--members 10] [--epochs 3] [--batch-size 128] [--precision 32]

Builds ``folds x seeds`` training sets of about ``--events`` events each (sizes differ by a few
hundred, as the folds of a window do), then trains them (a) one set after another, as a training
job did before, and (b) as one batched model (``slidescan.backends.nn.engine.train_groups``), as it does now.
Prints one JSON line: seconds and network-epochs per second of each (median epoch after the first,
which holds the CUDA graph capture), the speed-up, and the largest difference between the two
ways' predictions (they are the same networks). ``--seeds 10`` times what one model per (window,
method, injection) with every seed's folds would give.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from slidescan.backends.nn.engine import NNSettings, TrainingGroup, n_train_events, train_groups


def training_sets(n_sets: int, events: int, members: int, seed: int = 0) -> list[TrainingGroup]:
    """CATHODE-like sets: 1 part data (a little signal) to 4 parts reference, sizes a few hundred apart."""
    gen = np.random.default_rng(seed)
    groups = []
    for i in range(n_sets):
        n = events + int(gen.integers(-300, 300))
        x = gen.normal(size=(n, 4)).astype(np.float32)
        y = (gen.random(n) < 0.2).astype(np.float32)
        signal = (y == 1) & (gen.random(n) < 0.02)
        x[signal, :2] += 2.0
        groups.append(TrainingGroup(x, y, None, [1000 * i + m for m in range(members)], f"set{i}"))
    return groups


def timed(groups: list[TrainingGroup], settings: NNSettings, epoch_events: int) -> tuple[list, float, list[float]]:
    epoch_seconds = []

    def log(line: str) -> None:
        if line.startswith("epoch "):
            epoch_seconds.append(float(line.rsplit("(", 1)[1].split(" s)")[0]))

    start = time.perf_counter()
    models = train_groups(groups, settings, epoch_events, log=log)
    return models, time.perf_counter() - start, epoch_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=1, help="pseudo-experiments whose folds share the model")
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--precision", default="32")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="append the result line to this file")
    args = parser.parse_args()

    settings = NNSettings.from_config(dict(members=args.members, epochs=args.epochs, batch_size=args.batch_size, n_best=0,
                          precision=args.precision, device=args.device, threads=args.threads))
    groups = training_sets(args.folds * args.seeds, args.events, args.members)
    epoch_events = max(n_train_events(len(g.y), settings) for g in groups)

    alone_models, alone_seconds, alone_epochs = [], 0.0, []
    for g in groups:
        models, seconds, epochs = timed([g], settings, epoch_events)
        alone_models += models
        alone_seconds += seconds
        alone_epochs.append(epochs)
    batched_models, batched_seconds, batched_epochs = timed(groups, settings, epoch_events)

    probe = np.random.default_rng(1).normal(size=(5000, 4)).astype(np.float32)
    diff = max(float(np.abs(a.predict(probe, per_member=True) - b.predict(probe, per_member=True)).max())
               for a, b in zip(alone_models, batched_models))
    network_epochs = len(groups) * args.members
    # per epoch, after the first (CUDA graph capture); the sets' epochs run one after another when alone
    alone_epoch = sum(float(np.median(e[1:] or e)) for e in alone_epochs)
    batched_epoch = float(np.median(batched_epochs[1:] or batched_epochs))
    result = {
        "date": time.strftime("%Y-%m-%d"), "host": platform.node(), "device": args.device,
        "gpu": _gpu_name(args.device), "cpu_threads": args.threads, "events_per_set": args.events,
        "epoch_events": epoch_events, "sets": len(groups), "folds": args.folds, "seeds": args.seeds,
        "members_per_set": args.members, "members_batched": network_epochs, "epochs": args.epochs,
        "batch_size": args.batch_size, "precision": args.precision,
        "one_after_another_s": round(alone_seconds, 2), "batched_s": round(batched_seconds, 2),
        "one_after_another_epoch_s": round(alone_epoch, 3), "batched_epoch_s": round(batched_epoch, 3),
        "one_after_another_network_epochs_per_s": round(network_epochs / alone_epoch, 1),
        "batched_network_epochs_per_s": round(network_epochs / batched_epoch, 1),
        "speedup_per_epoch": round(alone_epoch / batched_epoch, 2),
        "max_prediction_difference": diff,
    }
    line = json.dumps(result)
    print(line)
    if args.json:
        with open(args.json, "a") as handle:
            handle.write(line + "\n")


def _gpu_name(device: str) -> str | None:
    if not device.startswith("cuda"):
        return None
    import torch

    return torch.cuda.get_device_name(torch.device(device))


if __name__ == "__main__":
    main()
