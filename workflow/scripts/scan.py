from slidescan.pipeline import gather
from slidescan.smk import job_log

with job_log(snakemake):
    gather(list(snakemake.input), snakemake.output[0], n_toys=snakemake.params.bumphunt["global_toys"])
