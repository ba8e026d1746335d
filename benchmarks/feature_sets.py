"""The feature-set study (issue 21) side by side: max SIC per method and S/B for each feature set.

    for s in baseline noise extended3; do
        python benchmarks/methods.py --configfile config/features_$s.yaml --json benchmarks/results/feature_sets.jsonl
    done
    python benchmarks/feature_sets.py benchmarks/results/feature_sets.jsonl

The three configs share their events and pseudo-experiments; only ``features`` differs. For each
(config, method, injection) the newest line of the results file counts. "kept" is the median max SIC
with the set over the median with the baseline. The 5-seed study at two signal strengths:

    python benchmarks/feature_sets.py benchmarks/results/feature_sets_5seeds.jsonl \
        --configs config/features5_baseline.yaml config/features5_noise.yaml
"""

from __future__ import annotations

import argparse
import json

SETS = {"config/features_baseline.yaml": "baseline (4)", "config/features_noise.yaml": "baseline + 10 noise (14)",
        "config/features_extended3.yaml": "extended3 (56)",
        "config/features5_baseline.yaml": "baseline (4)", "config/features5_noise.yaml": "baseline + 10 noise (14)"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("--configs", nargs="+", default=list(SETS)[:3],
                        help="the configs to compare, the baseline first (default: the 3-seed study)")
    args = parser.parse_args()
    rows = {}
    for line in open(args.results):
        r = json.loads(line)
        if r["configfile"] in args.configs:
            rows[(r["configfile"], r["method"], r["injection"])] = r
    methods = sorted({m for _, m, _ in rows})
    injections = sorted({i for _, _, i in rows}, reverse=True)
    names = args.configs
    header = ["method", "injection (S/B)"] + [SETS[n] for n in names] + [f"kept, {SETS[n].split(' (')[0]}"
                                                                          for n in names[1:]]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for injection in injections:
        for method in methods:
            got = [rows.get((n, method, injection)) for n in names]
            if got[0] is None:
                continue
            cells = [f"{g['max_sic_20'][0]:.3g} ({g['max_sic_20'][1]:.3g}-{g['max_sic_20'][2]:.3g})" if g else "-"
                     for g in got]
            kept = [f"{100 * g['max_sic_20'][0] / got[0]['max_sic_20'][0]:.0f} %" if g else "-" for g in got[1:]]
            print(f"| {method} | {injection} ({100 * got[0]['s_over_b']:.2f} %) | " + " | ".join(cells + kept) + " |")


if __name__ == "__main__":
    main()
