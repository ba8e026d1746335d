rule prepare_data:
    output:
        LAYOUT.events(),
    resources:
        **SLURM,
    log:
        LAYOUT.log("prepare_data"),
    params:
        data=DATA_PARAMS,
        folds=config["folds"],
        features=config["features"],
    script:
        "../scripts/prepare_data.py"


def signal_source(name):
    """What a named model's events come from: its file, or (a label of data.table) the data's file; a changed
    file reruns the model's jobs. The synthetic source generates them from the config (its params)."""
    model = SETTINGS.signal(name)
    if model.path:
        return [model.path]
    return [SETTINGS.data.table.path] if model.label is not None else []


rule prepare_signal:
    """A named signal model's pool and reference, in a file of its own (slidescan.stages.data.prepare_signal)."""
    input:
        lambda wc: signal_source(wc.name),
    output:
        LAYOUT.signal_events("{name}"),
    wildcard_constraints:
        name="[A-Za-z][A-Za-z0-9-]*",
    resources:
        **SLURM,
    log:
        LAYOUT.log("prepare_signal", "{name}"),
    params:
        data=DATA_PARAMS,
        folds=config["folds"],
        features=config["features"],
        # the model's events; its mass only says where limits and sensitivity are read, so it reruns nothing here
        signal=lambda wc: {k: v for k, v in config["signals"][wc.name].items() if k != "mass"},
    script:
        "../scripts/prepare_signal.py"


def sample_source(name):
    """An auxiliary sample's file (file sources): a changed file reruns the sample and what reads it."""
    path = SETTINGS.data.sample(name).path
    return [path] if path else []


def sample_params(name):
    """What a sample's events depend on: its own spec and how the data's source reads or generates events (another
    sample, the injections or the windows rerun nothing here)."""
    data = config["data"]
    return {"sample": data["samples"][name], "source": data["source"], "seed": data["seed"],
            "read": {k: data.get(k) for k in ("non_finite", "duplicates", data["source"])}}


rule prepare_sample:
    """An auxiliary sample (data.samples.<name>), with folds (slidescan.stages.data.prepare_sample)."""
    input:
        lambda wc: sample_source(wc.name),
    output:
        LAYOUT.sample_events("{name}"),
    wildcard_constraints:
        name="[A-Za-z][A-Za-z0-9_]*",
    resources:
        **SLURM,
    log:
        LAYOUT.log("prepare_sample", "{name}"),
    params:
        data=lambda wc: sample_params(wc.name),
        folds=config["folds"],
        features=config["features"],
    script:
        "../scripts/prepare_sample.py"


rule split_sample:
    """An auxiliary sample's events of one window, with their region: once per window, shared by every
    pseudo-experiment."""
    input:
        events=LAYOUT.sample_events("{name}"),
    output:
        LAYOUT.sample_split("{name}", "{window}"),
    wildcard_constraints:
        name="[A-Za-z][A-Za-z0-9_]*",
    resources:
        **SLURM,
    log:
        LAYOUT.log("split_sample", "{name}", "{window}"),
    params:
        windows=config["windows"],
    script:
        "../scripts/split_sample.py"


def signal_file(wildcards):
    """The named model's file a job of a pseudo-experiment needs (settings.signal_file), if any."""
    path = SETTINGS.signal_file(PseudoExperiment.from_wildcards(wildcards))
    return {"signal": str(path)} if path else {}


def injected_signal(wildcards):
    """The model's file of an injection of a named model; none at injection 0 (background only)."""
    return signal_file(wildcards) if wildcards.signal else {}


rule inject:
    input:
        unpack(injected_signal),
        events=rules.prepare_data.output,
    output:
        LAYOUT.injected(EXPERIMENT),
    resources:
        **SLURM,
    log:
        LAYOUT.log("inject", EXPERIMENT),
    params:
        data=DATA_PARAMS,
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
        unpack(signal_file),
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
