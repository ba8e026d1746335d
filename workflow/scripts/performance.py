from slidescan.io import read_attrs, write_csv
from slidescan.stats.performance import performance_table, sr_truth
from slidescan.plots import max_sic_vs_sb, roc_sic
from slidescan.smk import job_log

with job_log(snakemake):
    files = list(snakemake.input)
    table = performance_table(files)
    write_csv(snakemake.output.table, table)
    # ROC and SIC at the largest injection, first seed: one curve per method
    attrs = {f: read_attrs(f) for f in files}
    top = max(a["injection"] for a in attrs.values())
    first_seed = min(a["seed"] for a in attrs.values())
    curves = {a["method"]: sr_truth(f) for f, a in attrs.items() if a["injection"] == top and a["seed"] == first_seed}
    s_over_b = table.loc[table["injection"] == top, "s_over_b"].median()
    roc_sic(curves, f"{snakemake.params.window}, injection {top} (S/B {100 * s_over_b:.2f} % in the SR), "
                    f"seed {first_seed}: out-of-fold SR scores", snakemake.output.roc)
    max_sic_vs_sb(table, snakemake.output.max_sic)
