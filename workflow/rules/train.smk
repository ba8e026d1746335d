# the layout's paths of a training job's inputs as patterns, and each method's models and threads: built once,
# not per job (the layout's paths, formatted; benchmarks/dag.py)
_SPLIT = str(LAYOUT.split("{window}", EXPERIMENT))
_MODEL = {name: str(LAYOUT.model(configured.model, "{window}", EXPERIMENT)) for name, configured in MODELS.items()}
_METHOD_MODELS, _THREADS = {}, {}


@known_signature
def train_inputs(wildcards):
    """Every seed's events of the window, and the outputs of the models its method needs."""
    window, signal, injection, method = wildcards.window, wildcards.signal, int(wildcards.injection), wildcards.method
    if method not in _METHOD_MODELS:
        _METHOD_MODELS[method] = SETTINGS.method(method).models
    key = {"window": window, "signal": signal, "injection": injection}
    inputs = {"split": [_SPLIT.format(**key, seed=seed) for seed in SEEDS]}
    for name in _METHOD_MODELS[method]:
        inputs[name] = [_MODEL[name].format(**key, seed=seed) for seed in SEEDS]
    for name in SETTINGS.method(method).method_samples():  # the auxiliary samples the method reads itself
        inputs[f"sample_{name}"] = str(LAYOUT.sample_split(name, window))
    return inputs


@known_signature
def train_threads(wildcards):
    method = wildcards.method
    if method not in _THREADS:
        run = SETTINGS.method(method)
        threads = int(getattr(getattr(run, "settings", None), "threads", 1) or 1)
        # a job given several GPUs drives each from a thread of its own (slidescan.devices): a core each
        _THREADS[method] = max(threads, SETTINGS.cluster.gpus)
    return _THREADS[method]


rule train:
    """All k folds of all seeds of one window, method, signal model and injection in one job (slidescan.stages.train)."""
    input:
        unpack(train_inputs),
    # each fold's result, log and checkpoint live outside the declared output (layout.fold*, checkpoints): a
    # failed or killed job keeps its finished folds, and the rerun trains only the others
    output:
        [str(LAYOUT.scores("{window}", "{method}", SIGNAL + f"inj{{injection}}_seed{seed}")) for seed in SEEDS],
    resources:
        **SLURM_GPU,
    log:
        str(LAYOUT.train_log("{window}", "{method}", "{injection}", SIGNAL)),
    params:
        data=DATA_PARAMS,
        folds=config["folds"],
        method=section_of_method,
    threads: train_threads
    script:
        "../scripts/train.py"
