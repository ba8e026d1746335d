"""Compare the synthetic model's signal-region marginals with the real LHCO R&D SR events.

    python benchmarks/compare_lhco_marginals.py ../shared/data/lhco_rd_sr docs/synthetic_vs_lhco.png

Prints a markdown table of percentiles and writes a figure of the four feature distributions.
"""

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mplhep  # noqa: E402
import numpy as np  # noqa: E402

from slidescan import data  # noqa: E402
from slidescan.seeds import rng  # noqa: E402


def main(lhco_dir: str, out: str) -> None:
    real = data.read_cathode_npy(f"{lhco_dir}/innerdata_train.npy")
    model = data.SyntheticModel.from_config({})
    bkg = data.generate_background(600_000, model, rng(1, "compare"))
    bkg = bkg[bkg["mjj"].between(3.3, 3.7)]
    sig = data.generate_signal(20_000, model, rng(1, "compare-signal"))
    sig = sig[sig["mjj"].between(3.3, 3.7)]
    samples = {"LHCO bkg": real[real["label"] == 0], "synthetic bkg": bkg,
               "LHCO sig": real[real["label"] == 1], "synthetic sig": sig}
    print("| feature | sample | 10 % | 50 % | 90 % |\n|---|---|---|---|---|")
    for feature in data.FEATURES:
        for name, df in samples.items():
            q = np.percentile(df[feature], [10, 50, 90])
            print(f"| {feature} | {name} | {q[0]:.3f} | {q[1]:.3f} | {q[2]:.3f} |")
    plt.style.use(mplhep.style.CMS)
    fig, axes = plt.subplots(1, 4, figsize=(24, 6))
    ranges = {"mj1": (0, 0.6), "delta_mj": (0, 0.8), "tau21_j1": (0, 1), "tau21_j2": (0, 1)}
    for ax, feature in zip(axes, data.FEATURES):
        bins = np.linspace(*ranges[feature], 41)
        for (name, df), style in zip(samples.items(), ["-", "--", "-", "--"]):
            color = "C0" if "bkg" in name else "C3"
            ax.hist(df[feature], bins, density=True, histtype="step", ls=style, color=color, lw=2, label=name)
        ax.set_xlabel(feature)
    axes[0].set_ylabel("normalised")
    axes[0].legend(fontsize=13)
    fig.suptitle("signal region 3.3 < mjj < 3.7 TeV: synthetic model vs LHCO R&D (innerdata_train)", fontsize=18)
    fig.savefig(out, bbox_inches="tight", dpi=60)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
