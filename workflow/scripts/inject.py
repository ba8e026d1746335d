from slidescan.smk import experiment, job_log, settings
from slidescan.stages.data import make_injection

with job_log(snakemake):
    inputs = snakemake.input
    make_injection(settings(snakemake), inputs.events[0], experiment(snakemake), snakemake.output[0],
                   signal=inputs.get("signal"))
