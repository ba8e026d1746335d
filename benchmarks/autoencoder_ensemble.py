"""An autoencoder ensemble as one vectorised model against its members trained one at a time (issue 30).

    python benchmarks/autoencoder_ensemble.py [--members 50] [--events 20000] [--epochs 3] [--device cpu]
                                              [--json benchmarks/results/autoencoder_ensemble.jsonl]

The ``ae`` score's default network (4 features -> 32 -> 2 -> 32 -> 4, batch 256) on ``--events`` sideband-like
events, trained by the nn engine with the "reconstruction" loss (``backends.nn.engine.train_groups``): (a) all
``--members`` members as one batched model, (b) each member alone, one after another, as a loop over networks
would. Prints one JSON line: wall seconds of each, member-epochs per second, the speed-up, and the largest
difference between the two ways' reconstruction errors on held-out events (they are the same networks).
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="append the result to this JSON-lines file")
    args = parser.parse_args()

    from slidescan.backends.nn.engine import TrainingGroup, train_groups
    from slidescan.methods import configure

    settings = configure("ae", {"ae": {"epochs": args.epochs, "members": args.members, "device": args.device}}
                         ).settings
    g = np.random.default_rng(0)
    x = np.stack([g.exponential(0.1, args.events), g.exponential(0.1, args.events), g.beta(4, 3, args.events),
                  g.beta(4, 3, args.events)], 1)
    probe = np.stack([g.exponential(0.1, 5000), g.exponential(0.1, 5000), g.beta(4, 3, 5000),
                      g.beta(4, 3, 5000)], 1)
    seeds = list(range(1, args.members + 1))
    quiet = lambda s: None  # noqa: E731

    # warm-up (torch's first call pays for its initialisation), not timed
    train_groups([TrainingGroup(x[:1000], np.zeros(1000), None, [0])], settings, log=quiet, loss="reconstruction")
    start = time.perf_counter()
    together, = train_groups([TrainingGroup(x, np.zeros(len(x)), None, seeds)], settings, log=quiet,
                             loss="reconstruction")
    batched = time.perf_counter() - start
    start = time.perf_counter()
    alone = [train_groups([TrainingGroup(x, np.zeros(len(x)), None, [s])], settings, log=quiet,
                          loss="reconstruction")[0] for s in seeds]
    loop = time.perf_counter() - start

    per_member = together.predict(probe, per_member=True)
    diff = max(float(np.max(np.abs(per_member[i] - m.predict(probe)) / np.maximum(m.predict(probe), 1e-12)))
               for i, m in enumerate(alone))
    member_epochs = args.members * args.epochs
    row = {"benchmark": "autoencoder_ensemble", "date": time.strftime("%Y-%m-%d"), "machine": platform.node(),
           "cpu_count": __import__("os").cpu_count(), "device": args.device, "members": args.members,
           "events": args.events, "epochs": args.epochs, "hidden": list(settings.hidden),
           "batch_size": settings.batch_size, "batched_s": round(batched, 2), "one_at_a_time_s": round(loop, 2),
           "member_epochs_per_s_batched": round(member_epochs / batched, 1),
           "member_epochs_per_s_one_at_a_time": round(member_epochs / loop, 1),
           "speedup": round(loop / batched, 2), "max_relative_score_difference": diff}
    print(json.dumps(row))
    if args.json:
        with open(args.json, "a") as out:
            out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
