from slidescan.io import read_table
from slidescan.plots import threshold_map, window_map
from slidescan.smk import job_log, settings

with job_log(snakemake):
    events = read_table(snakemake.input[0], "events")
    regions = list(settings(snakemake).windows)
    if regions[0].kind == "mjj_window":
        window_map(events["mjj"].to_numpy(), regions, snakemake.output[0], truth_mass=snakemake.params.truth_mass)
    else:
        threshold_map(events, regions, snakemake.output[0])
