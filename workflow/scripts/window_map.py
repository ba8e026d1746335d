from slidescan.io import read_table
from slidescan.plots import window_map
from slidescan.smk import job_log, settings

with job_log(snakemake):
    events = read_table(snakemake.input[0], "events")
    window_map(events["mjj"].to_numpy(), list(settings(snakemake).windows), snakemake.output[0],
               truth_mass=snakemake.params.truth_mass)
