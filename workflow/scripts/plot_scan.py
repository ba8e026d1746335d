import pandas as pd

from slidescan.plots import pvalue_scan
from slidescan.smk import job_log

with job_log(snakemake):
    pvalue_scan(pd.read_csv(snakemake.input[0]), snakemake.wildcards.method, int(snakemake.wildcards.injection),
                snakemake.output[0], truth_mass=snakemake.params.truth_mass)
