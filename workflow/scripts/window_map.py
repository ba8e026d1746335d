from slidescan.io import read_table
from slidescan.smk import job_log, settings

with job_log(snakemake):
    events = read_table(snakemake.input[0], "events")
    regions = list(settings(snakemake).windows)
    regions[0].draw_map(events, regions, snakemake.output[0], truth_mass=snakemake.params.truth_mass)
