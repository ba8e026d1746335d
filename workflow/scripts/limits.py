from slidescan.smk import job_log, settings
from slidescan.stages.limits import run_limits

with job_log(snakemake):
    scan = settings(snakemake)
    run_limits(scan, snakemake.input[0], snakemake.output.table, dict(zip(scan.methods, snakemake.output.plots)))
