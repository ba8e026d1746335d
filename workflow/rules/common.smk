# Names and helpers shared by the rules. Only cheap config arithmetic here: every cluster job
# re-parses the Snakefile.
from slidescan.cluster import slurm_resources
from slidescan.methods import needs_flow
from slidescan.windows import window_grid

RESULTS = f"results/{config['scan']}"
WINDOW_GRID = window_grid(config["windows"])
WINDOWS = [w.name for w in WINDOW_GRID]
METHODS = list(config["methods"])
INJECTIONS = [int(i) for i in config["injections"]]
SEEDS = [int(s) for s in config["seeds"]]
EXPERIMENT = "inj{injection}_seed{seed}"
# the merged out-of-fold scores of one window, method and pseudo-experiment
SCORES = f"{RESULTS}/scores/{{window}}/{{method}}/{EXPERIMENT}.h5"
# where the injected signal sits (for the sensitivity curve and the plots' marker)
TRUTH_MASS = float(config.get("truth_mass", config["data"].get("synthetic", {}).get("model", {}).get("m_wprime", 3.5)))
# the window whose SR centre is nearest to it: where ROC, SIC and loss curves are drawn
TRUTH_WINDOW = min(WINDOW_GRID, key=lambda w: abs(w.sr_centre - TRUTH_MASS)).name
SIGNAL_INJECTIONS = [i for i in INJECTIONS if i > 0]
CATHODE = any(needs_flow(m) for m in METHODS)
# sbatch account / partition / QoS of the submitted rules (config `cluster` or SLIDESCAN_SLURM_*); empty locally
SLURM = slurm_resources(config)
SLURM_GPU = slurm_resources(config, gpu=True)


wildcard_constraints:
    window="w[0-9]+",
    method="[a-z]+-[a-z]+",
    injection="[0-9]+",
    seed="[0-9]+",
    fold="[0-9]+",


def scan_plots():
    return expand(f"{RESULTS}/plots/pvalue_scan_{{method}}_inj{{injection}}.png", method=METHODS, injection=INJECTIONS)


def report_figures():
    """Figures of the report beyond the scan plots; the truth-based ones only when signal is injected."""
    figures = [f"{RESULTS}/plots/window_map.png", f"{RESULTS}/jobs.csv"]
    figures += expand(f"{RESULTS}/plots/loss_{{method}}.png", method=METHODS)
    if SIGNAL_INJECTIONS:
        figures += [f"{RESULTS}/performance.csv", f"{RESULTS}/plots/roc_sic.png", f"{RESULTS}/plots/max_sic_vs_sb.png"]
    if CATHODE:
        figures.append(f"{RESULTS}/plots/loss_flows.png")
    return figures


def bumphunt_tables():
    """One table per scan (method, pseudo-experiment), with every window's rows."""
    return expand(f"{RESULTS}/bumphunt/{{method}}/{EXPERIMENT}.csv", method=METHODS, injection=INJECTIONS, seed=SEEDS)
