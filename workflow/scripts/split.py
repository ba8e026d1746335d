from slidescan.smk import job_log, settings
from slidescan.stages.data import split_window

with job_log(snakemake):
    split_window(settings(snakemake), snakemake.input.injected[0], snakemake.input.events[0],
                 snakemake.wildcards.window, snakemake.output[0])
