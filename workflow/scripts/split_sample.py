from slidescan.smk import job_log, settings
from slidescan.stages.data import split_sample

with job_log(snakemake):
    split_sample(settings(snakemake), snakemake.input.events, snakemake.wildcards.window, snakemake.output[0])
