from slidescan.io import read_attrs, read_table
from slidescan.plots import loss_curves
from slidescan.smk import job_log

with job_log(snakemake):
    histories = {}
    for path in snakemake.input:
        a = read_attrs(path)
        history = read_table(path, "history")
        model = f"{a['signal']} " if a.get("signal") else ""  # attrs name the model of a named one only
        # a model of the window alone (Model.window_alone) serves every pseudo-experiment: its label is its window
        label = f"{a['window']} {model}inj {a['injection']} seed {a['seed']}" if "injection" in a else a["window"]
        if "fold" in history:  # a method's merged scores: one curve per fold
            histories.update({f"{label} fold {fold}": h for fold, h in history.groupby("fold")})
        else:  # a per-window model
            histories[label] = history
    loss_curves(histories, snakemake.params.title, snakemake.output[0], ylabel=snakemake.params.ylabel)
