from slidescan.pipeline import run_bumphunt
from slidescan.smk import job_log

with job_log(snakemake):
    run_bumphunt(snakemake.config, list(snakemake.input), snakemake.output.table, snakemake.output.spectra)
