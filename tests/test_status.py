"""`slidescan status` from the files a scan leaves, including the per-window models' jobs."""

from pathlib import Path

from slidescan.report.status import report

from test_workflow import TINY, make_workdir


def test_failed_model_job_is_listed_with_its_reason_and_log(tmp_path):
    workdir = make_workdir(tmp_path, TINY)
    results = workdir / "results" / "tiny"
    log = results / "logs/flow/w01/inj400_seed1.log"
    log.parent.mkdir(parents=True)
    log.write_text("w01 injection 400 seed 1: flow on 8000 sideband events\nflow epoch 1/3: train nll 5.6\n"
                   "Traceback (most recent call last):\n  File x\nFloatingPointError: flow training: validation "
                   "loss is nan at epoch 2; lower flow.learning_rate\n")
    done = results / "flows/w00/inj0_seed1.h5"
    done.parent.mkdir(parents=True)
    done.write_bytes(b"")
    running = results / "logs/flow/w00/inj400_seed1.log"
    running.parent.mkdir(parents=True, exist_ok=True)
    running.write_text("flow epoch 1/3: ...\nflow epoch 2/3: ...\n")
    text, counts = report(workdir, Path("config/config.yaml"), "profiles/local")
    assert ("4 sideband_flow models (Sideband flow (CATHODE background model)): 1 done, 1 failed, 1 interrupted, "
            "1 missing") in text
    assert ("failed      window w01 model sideband_flow injection 400 seed 1: FloatingPointError: flow training: "
            "validation loss is nan at epoch 2; lower flow.learning_rate") in text
    assert str(log) in text
    assert "interrupted window w00 model sideband_flow injection 400 seed 1: stopped after 2 logged epochs" in text
    assert counts["failed"] == 1


def test_scan_without_models_lists_none(tmp_path):
    workdir = make_workdir(tmp_path, {**TINY, "methods": ["cwola-nn"]})
    text, _ = report(workdir, Path("config/config.yaml"), "profiles/local")
    assert " models (" not in text and "8 training folds: 0 done" in text


def test_methods_that_share_a_model_list_its_jobs_once(tmp_path):
    """cathode, anode, ranode and flow-nll all need the sideband flow: one job per window and pseudo-experiment."""
    workdir = make_workdir(tmp_path, {**TINY, "methods": ["cathode-nn", "anode", "ranode", "flow-nll"]})
    text, _ = report(workdir, Path("config/config.yaml"), "profiles/local")
    assert "4 sideband_flow models (Sideband flow (CATHODE background model)): 0 done" in text
    assert "32 training folds: 0 done" in text and "simulation_flow" not in text
    simulated = {**TINY, "methods": ["flow-nll"], "flow-nll": {"background": "simulation"},
                 "data": {**TINY["data"], "samples": {"simulation": {}}}}
    (workdir / "config" / "config.yaml").write_text(__import__("yaml").safe_dump(simulated))
    text, _ = report(workdir, Path("config/config.yaml"), "profiles/local")
    # a flow of the simulation alone: one per window (2), shared by the window's 2 pseudo-experiments
    assert "2 simulation_flow models (Flow of the simulated background): 0 done" in text
    assert "sideband_flow" not in text


def test_failed_bump_hunt_is_listed_with_its_reason_log_and_target(tmp_path):
    """A bump hunt that fails after all its folds trained is a failed job too, not a finished scan."""
    workdir = make_workdir(tmp_path, {**TINY, "methods": ["cwola-nn"]})
    results = workdir / "results" / "tiny"
    log = results / "logs/bumphunt/cwola-nn/inj400_seed1.log"
    log.parent.mkdir(parents=True)
    log.write_text("Traceback (most recent call last):\n  File x\nValueError: bumphunt.bin_width: 0.5 TeV is wider "
                   "than the signal region of w00\n")
    done = results / "bumphunt/cwola-nn/inj0_seed1.csv"
    done.parent.mkdir(parents=True)
    done.write_text("window\n")
    text, counts = report(workdir, Path("config/config.yaml"), "profiles/local")
    assert "2 bump-hunt jobs (one per method and pseudo-experiment): 1 done, 1 failed, 0 interrupted, 0 missing" in text
    assert ("failed      bump hunt method cwola-nn injection 400 seed 1 (all windows): ValueError: bumphunt.bin_width: "
            "0.5 TeV is wider than the signal region of w00") in text
    assert str(log) in text
    assert text.rstrip().endswith("snakemake results/tiny/bumphunt/cwola-nn/inj400_seed1.csv --profile profiles/local "
                                  "--configfile config/config.yaml")
    assert counts["failed"] == 1


def test_fold_trained_with_other_settings_is_stale_not_done(tmp_path):
    """After a settings change, status says which finished folds the next run will retrain."""
    from slidescan.config import load_config
    from slidescan.io import write_tables
    from slidescan.layout import PseudoExperiment
    from slidescan.settings import ScanSettings
    from slidescan.stages.train import fold_settings_identity

    import pandas as pd

    workdir = make_workdir(tmp_path, {**TINY, "methods": ["cwola-nn"], "injections": [400]})
    config = load_config(workdir, Path("config/config.yaml"))
    results = workdir / "results" / "tiny" / "train"
    attrs = {"window": "w00", "injection": 400, "seed": 1}
    for window in ("w00", "w01"):
        for fold in (0, 1):
            older = {**config, "classifier": {**config["classifier"], "nn": {**config["classifier"]["nn"], "epochs": 7}}}
            used = ScanSettings.from_config(older if (window, fold) == ("w01", 1) else config)
            identity = fold_settings_identity(used, used.method("cwola-nn"), window, PseudoExperiment(400, 1), fold)
            write_tables(results / f"{window}/cwola-nn/inj400_seed1/fold{fold}.h5", {"scores": pd.DataFrame({"s": [1]})},
                         attrs={**attrs, "window": window, "fold": fold, "settings_fingerprint": identity})
    text, counts = report(workdir, Path("config/config.yaml"), "profiles/local")
    assert "4 training folds: 3 done, 0 failed, 0 interrupted, 0 missing, 1 stale" in text
    assert ("stale       window w01 method cwola-nn injection 400 seed 1 fold 1: trained with other classifier.nn "
            "settings or data.seed than the config's; the next run retrains it") in text
    assert text.rstrip().endswith("snakemake results/tiny/scores/w01/cwola-nn/inj400_seed1.h5 --profile profiles/local "
                                  "--configfile config/config.yaml")
    assert counts["stale"] == 1 and counts["failed"] == 0


def test_interrupted_folds_trained_together_name_their_shared_checkpoint(tmp_path):
    workdir = make_workdir(tmp_path, {**TINY, "methods": ["cwola-nn"], "injections": [400]})
    results = workdir / "results" / "tiny"
    checkpoint = results / "checkpoints/w00/cwola-nn/inj400/batch-0123456789abcdef.ckpt"
    for fold in (0, 1):
        log = results / f"logs/train/w00/cwola-nn/inj400_seed1/fold{fold}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"2 folds as one batched model of 8 members (w00 cwola-nn injection 400: seed 1 folds 0, 1)\n"
                       f"checkpoint: {checkpoint}\n"
                       + "".join(f"epoch {e}/8: train loss 0.6 val loss 0.6 (3.00 s)\n" for e in (1, 2, 3)))
    text, counts = report(workdir, Path("config/config.yaml"), "profiles/local")
    for fold in (0, 1):  # the checkpoint is not written yet
        assert (f"interrupted window w00 method cwola-nn injection 400 seed 1 fold {fold}: stopped after 3 logged "
                "epochs: running") in text
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"")
    text, counts = report(workdir, Path("config/config.yaml"), "profiles/local")
    for fold in (0, 1):
        assert (f"interrupted window w00 method cwola-nn injection 400 seed 1 fold {fold}: stopped after 3 logged "
                "epochs (checkpoint saved)") in text
    assert "missing     window w01 method cwola-nn injection 400 seed 1 fold 0: not started" in text
    assert counts["interrupted"] == 2
    # the batch's 9 s of epochs are shared by its 2 folds: jobs.csv gives each its half
    from slidescan.config import load_settings
    from slidescan.report.status import jobs_table

    settings = load_settings(workdir, Path("config/config.yaml"))
    jobs = jobs_table(settings, settings.layout(workdir), workdir)
    trained = jobs[(jobs["window"] == "w00") & (jobs["job"] == "train")]
    assert trained["train_seconds"].tolist() == [4.5, 4.5] and trained["shared_by"].tolist() == [2, 2]
    assert trained["epochs"].tolist() == [3, 3]
