rule prepare_data:
    output:
        LAYOUT.events(),
    resources:
        **SLURM,
    log:
        LAYOUT.log("prepare_data"),
    params:
        data=config["data"],
        folds=config["folds"],
        features=config["features"],
    script:
        "../scripts/prepare_data.py"


rule inject:
    input:
        rules.prepare_data.output,
    output:
        LAYOUT.injected(EXPERIMENT),
    resources:
        **SLURM,
    log:
        LAYOUT.log("inject", EXPERIMENT),
    params:
        data=config["data"],
        folds=config["folds"],
    script:
        "../scripts/inject.py"


rule window_table:
    output:
        LAYOUT.windows(),
    params:
        windows=config["windows"],
    script:
        "../scripts/window_table.py"


rule split:
    input:
        injected=rules.inject.output,
        events=rules.prepare_data.output,
    output:
        LAYOUT.split("{window}", EXPERIMENT),
    resources:
        **SLURM,
    log:
        LAYOUT.log("split", "{window}", EXPERIMENT),
    params:
        windows=config["windows"],
    script:
        "../scripts/split.py"
