# Names and helpers shared by the rules. Only cheap config arithmetic here: every cluster job
# re-parses the Snakefile.
from slidescan.methods import needs_flow
from slidescan.windows import window_grid

RESULTS = f"results/{config['scan']}"
WINDOWS = [w.name for w in window_grid(config["windows"])]
METHODS = list(config["methods"])
INJECTIONS = [int(i) for i in config["injections"]]
SEEDS = [int(s) for s in config["seeds"]]
FOLDS = list(range(int(config["folds"]["k"])))
EXPERIMENT = "inj{injection}_seed{seed}"
# where the injected signal sits (for the sensitivity curve and the plots' marker)
TRUTH_MASS = float(config.get("truth_mass", config["data"].get("synthetic", {}).get("model", {}).get("m_wprime", 3.5)))


wildcard_constraints:
    window="w[0-9]+",
    method="[a-z]+-[a-z]+",
    injection="[0-9]+",
    seed="[0-9]+",
    fold="[0-9]+",


def scan_plots():
    return expand(f"{RESULTS}/plots/pvalue_scan_{{method}}_inj{{injection}}.png", method=METHODS, injection=INJECTIONS)


def bumphunt_tables():
    return expand(
        f"{RESULTS}/bumphunt/{{window}}/{{method}}/{EXPERIMENT}.csv",
        window=WINDOWS, method=METHODS, injection=INJECTIONS, seed=SEEDS,
    )
