from slidescan.smk import job_log, settings
from slidescan.stages.limits import run_limits

with job_log(snakemake):
    scan = settings(snakemake)
    keys = [(m, s.name) for m in scan.methods for s in scan.signals]  # the rule's order of plots
    run_limits(scan, snakemake.input[0], snakemake.output.table, dict(zip(keys, snakemake.output.plots)),
               snakemake.threads)
