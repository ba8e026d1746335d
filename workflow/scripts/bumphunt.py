from slidescan.smk import job_log, settings
from slidescan.stages.bumphunt import run_bumphunt

with job_log(snakemake):
    run_bumphunt(settings(snakemake), list(snakemake.input), snakemake.output.table, snakemake.output.spectra)
