from slidescan.smk import job_log, settings
from slidescan.stages.data import split_window

with job_log(snakemake):
    inputs = snakemake.input
    split_window(settings(snakemake), inputs.injected[0], inputs.events[0], snakemake.wildcards.window,
                 snakemake.output[0], signal=inputs.get("signal"))
