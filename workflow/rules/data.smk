rule prepare_data:
    output:
        f"{RESULTS}/data/events.h5",
    resources:
        **SLURM,
    log:
        f"{RESULTS}/logs/prepare_data.log",
    params:
        data=config["data"],
        folds=config["folds"],
    script:
        "../scripts/prepare_data.py"


rule inject:
    input:
        rules.prepare_data.output,
    output:
        f"{RESULTS}/data/{EXPERIMENT}.h5",
    resources:
        **SLURM,
    log:
        f"{RESULTS}/logs/inject/{EXPERIMENT}.log",
    params:
        data=config["data"],
        folds=config["folds"],
    script:
        "../scripts/inject.py"


rule window_table:
    output:
        f"{RESULTS}/windows.csv",
    params:
        windows=config["windows"],
    script:
        "../scripts/window_table.py"


rule split:
    input:
        injected=rules.inject.output,
        events=rules.prepare_data.output,
    output:
        f"{RESULTS}/split/{{window}}/{EXPERIMENT}.h5",
    resources:
        **SLURM,
    log:
        f"{RESULTS}/logs/split/{{window}}/{EXPERIMENT}.log",
    params:
        windows=config["windows"],
    script:
        "../scripts/split.py"
