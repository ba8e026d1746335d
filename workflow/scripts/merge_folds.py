from slidescan.pipeline import merge_folds
from slidescan.smk import job_log

with job_log(snakemake):
    merge_folds(list(snakemake.input), snakemake.output[0])
