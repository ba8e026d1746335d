# slidescan: sliding-window weakly supervised resonance search. Logic lives in src/slidescan.
import os

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


# the landing page: the summary `slidescan report` writes from the results, else the static description
_SUMMARY = f"results/{config['scan']}/summary.rst"


report: _SUMMARY if os.path.exists(_SUMMARY) else "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/stats.smk"
include: "workflow/rules/report.smk"


# cheap aggregation and plotting: on a cluster they run in the head process instead of waiting in the queue
localrules:
    all,
    window_table,
    scan,
    calibration,
    sensitivity,
    plot_scan,
    window_map,
    performance,
    loss_curves,
    flow_loss_curves,
    jobs,


rule all:
    input:
        f"{RESULTS}/windows.csv",
        f"{RESULTS}/pvalue_scan.csv",
        scan_plots(),
        f"{RESULTS}/calibration.csv",
        f"{RESULTS}/plots/sensitivity.png",
        report_figures(),
