def train_inputs(wildcards):
    """Every seed's events of the window, and the outputs of the models its method needs."""
    experiments = [PseudoExperiment(int(wildcards.injection), seed) for seed in SEEDS]
    inputs = {"split": [LAYOUT.split(wildcards.window, e) for e in experiments]}
    for name in SETTINGS.method(wildcards.method).models:
        inputs[name] = [LAYOUT.model(MODELS[name].model, wildcards.window, e) for e in experiments]
    return inputs


def train_threads(wildcards):
    run = SETTINGS.method(wildcards.method)
    return int(getattr(getattr(run, "settings", None), "threads", 1) or 1)


rule train:
    """All k folds of all seeds of one window, method and injection in one job (slidescan.stages.train)."""
    input:
        unpack(train_inputs),
    # each fold's result, log and checkpoint live outside the declared output (layout.fold*, checkpoints): a
    # failed or killed job keeps its finished folds, and the rerun trains only the others
    output:
        [str(LAYOUT.scores("{window}", "{method}", f"inj{{injection}}_seed{seed}")) for seed in SEEDS],
    resources:
        **SLURM_GPU,
    log:
        str(LAYOUT.train_log("{window}", "{method}", "{injection}")),
    params:
        data=config["data"],
        folds=config["folds"],
        method=section_of_method,
    threads: train_threads
    script:
        "../scripts/train.py"
