from slidescan.pipeline import split_window
from slidescan.smk import job_log

with job_log(snakemake):
    split_window(snakemake.config, snakemake.input.injected[0], snakemake.input.events[0],
                 snakemake.wildcards.window, snakemake.output[0])
