"""Throughput of the constituent stage: events per second per core, and the time for the 1.1 M-event LHCO file.

    python benchmarks/constituents.py --events 4000 --json benchmarks/results/constituents.jsonl
    python benchmarks/constituents.py --events 4000 --workers 1 --efp-degree 3   # the cost of the EFPs

Writes events in the LHCO R&D constituent layout (700 particle slots of pT, eta, phi): two hard
anti-kT R = 1.0 jets of 30-120 particles each plus 50-250 soft particles over |eta| < 2.5, about the
multiplicities of the LHCO events (the real file is not at hand here). Converts them with
``slidescan.data.constituents.convert`` on 1 and on ``--workers`` processes; with ``--efp-degree D``, each
both without and with the energy-flow polynomials of degree <= D (the same events, one after the other).
Besides wall time, the CPU time of this process and its workers (``events_per_cpu_s``), which other
work on a shared machine disturbs less.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
LHCO_EVENTS = 1_100_000


def events(n: int, seed: int = 0) -> pd.DataFrame:
    g = np.random.default_rng(seed)
    values = np.zeros((n, 3 * 700 + 1), dtype=np.float64)
    for e in range(n):
        parts, centre = [], g.uniform(-np.pi, np.pi)
        for phi0 in (centre, centre + np.pi):
            m = int(g.integers(30, 120))
            parts.append(np.column_stack([g.exponential(1500 / m, m), g.normal(0, 0.3, m),
                                          phi0 + g.normal(0, 0.3, m)]))
        m = int(g.integers(50, 250))
        parts.append(np.column_stack([g.exponential(3, m), g.uniform(-2.5, 2.5, m), g.uniform(-np.pi, np.pi, m)]))
        p = np.concatenate(parts)[:700]
        p = p[np.argsort(-p[:, 0])]
        values[e, :3 * len(p)] = p.ravel()
        values[e, -1] = e % 10 == 0
    return pd.DataFrame(values, columns=[str(i) for i in range(values.shape[1])])


def cpu_seconds() -> float:
    """User and system time of this process and its finished children (the pool's workers, once shut down)."""
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                   resource.getrusage(resource.RUSAGE_CHILDREN)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--chunk-size", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--efp-degree", type=int, default=0, help="also time the conversion with the EFPs of degree "
                                                                    "<= D (needs energyflow; docs/features.md)")
    parser.add_argument("--json")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    from slidescan.data.constituents import convert

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "constituents.h5"
        events(args.events).to_hdf(source, key="df", format="table")
        rows = []
        for workers in sorted({1, args.workers}):
            for degree in sorted({0, args.efp_degree}):
                out = Path(tmp) / f"features{workers}_efp{degree}.h5"
                started, cpu = time.perf_counter(), cpu_seconds()
                convert(source, out, chunk_size=args.chunk_size, workers=workers, efp_degree=degree,
                        log=lambda m: None)
                seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
                rate = args.events / seconds
                rows.append({"workers": workers, "efp_degree": degree, "events": args.events,
                             "seconds": round(seconds, 1), "events_per_s": round(rate),
                             "events_per_s_per_core": round(rate / workers),
                             "cpu_seconds": round(cpu, 1), "events_per_cpu_s": round(args.events / cpu),
                             "lhco_hours": round(LHCO_EVENTS / rate / 3600, 2),
                             "load": round(os.getloadavg()[0], 1)})
                print(rows[-1])
    if args.json:
        with open(args.json, "a") as handle:
            for row in rows:
                handle.write(json.dumps({"date": time.strftime("%Y-%m-%d"), "host": platform.node(),
                                         "cpus": os.cpu_count(), "chunk_size": args.chunk_size, **row}) + "\n")


if __name__ == "__main__":
    main()
