# slidescan: sliding-window anomaly searches. Logic lives in src/slidescan, every path in slidescan.layout.
import os

from snakemake.utils import min_version

from slidescan.config import validate
from slidescan.settings import ScanSettings
from slidescan.smk import local_scheduling

min_version("9.0")


configfile: "config/config.yaml"


# the plugins, the schema with every method's, model's and backend's section, the defaults: once, here
validate(config, source=", ".join(map(str, workflow.configfiles)) or "config")
SETTINGS = ScanSettings.from_config(config)

# an Apptainer image for every rule's script (cluster.container); used only with
# --software-deployment-method apptainer (profiles/slurm-apptainer), docs/cluster.md
if SETTINGS.cluster.container:

    container: SETTINGS.cluster.container


include: "workflow/rules/common.smk"


# a local run without Snakemake's job rate limiter, whose timers multiply the scheduler's rounds (slidescan.smk)
onstart:
    local_scheduling(workflow)


# the landing page: the summary `slidescan report` writes from the results, else the static description
report: str(LAYOUT.summary()) if LAYOUT.summary().exists() else "workflow/report/workflow.rst"


include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
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
    jobs,
    methods_overview,


rule all:
    input:
        LAYOUT.windows(),
        LAYOUT.pvalue_scan(),
        scan_plots(),
        LAYOUT.calibration(),
        [LAYOUT.sensitivity_plot(s) for s in SIGNALS],
        limit_outputs(),
        report_figures(),
