"""Configuration: loading, overrides, and one clear line with exit code 2 for each user error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import REPO, cli, tiny_config
from cryptosweep.cli import main
from cryptosweep.config import load_config, validate_config


def run_cli(capsys, *args: str) -> tuple[int, str]:
    code = main(["run", *args])
    err = capsys.readouterr().err
    return code, err


def test_template_and_demo_load_with_json_and_yaml():
    template = load_config(REPO / "parameters" / "sweep_config_template.json")
    demo = load_config(REPO / "parameters" / "demo.yaml")
    assert template.parameter_ranges.catboost and template.parameter_ranges.torch
    assert template.hyperband.eta == 3 and template.gpu_settings.deterministic
    # every section with its defaults: the deployment gate's too
    assert template.deployment == type(template.deployment)()
    assert demo.sweep_type == "hyperband" and demo.objective.models == ["lightgbm", "xgboost"]


def test_overrides_are_yaml_scalars_and_reach_nested_keys(write_config):
    path = write_config(tiny_config())
    config = load_config(path, ["random.n_trials=11", "objective.fees_bps=2.5",
                                "parameter_ranges.trading.threshold.high=0.7",
                                "execution.scheduler_address=null"])
    assert config.random.n_trials == 11
    assert config.objective.fees_bps == 2.5
    assert config.parameter_ranges.trading["threshold"].high == 0.7
    assert config.execution.scheduler_address is None


def test_data_flag_overrides_config_path(write_config, tmp_path):
    data = tmp_path / "candles.csv"
    data.write_text("x")
    config = load_config(write_config(tiny_config()), data_path=data)
    assert config.data.path == str(data.resolve())


ERROR_CASES = [
    ("unknown key", {"random__n_trails": 3}, [], "random.n_trails: unknown key"),
    ("wrong type", {"random__n_trials": "many"}, [], "random.n_trials: Input should be a valid"),
    ("low > high", {"parameter_ranges__trading__threshold": {
        "type": "float", "low": 0.9, "high": 0.1}}, [],
     "parameter_ranges.trading.threshold: low (0.9) > high (0.1)"),
    ("unknown model family", {"parameter_ranges__randomforest": {}}, [],
     "parameter_ranges.randomforest: unknown model family 'randomforest'"),
    ("unknown sweep type", {"sweep_type": "annealing"}, [], "sweep_type: Input should be"),
    ("log with low <= 0", {"parameter_ranges__trading__stop_loss": {
        "type": "float", "low": 0.0, "high": 0.1, "log": True}}, [],
     "parameter_ranges.trading.stop_loss: log scale needs low > 0"),
    ("bad dimension type", {"parameter_ranges__trading__threshold": {
        "type": "normal", "low": 0, "high": 1}}, [],
     "parameter_ranges.trading.threshold: type must be one of"),
    ("model without ranges", {"objective__models": ["xgboost"]}, [],
     "objective.models lists 'xgboost' but parameter_ranges.xgboost is missing"),
    ("bad override syntax", {}, ["--set", "random.n_trials"],
     "--set 'random.n_trials': expected dotted.key=value"),
    ("override of unknown key", {}, ["--set", "objective.fee_bps=3"],
     "objective.fee_bps: unknown key"),
    ("override with wrong type", {}, ["--set", "objective.folds=[1, 2]"],
     "objective.folds: Input should be a valid integer"),
    ("missing data file", {}, ["--data", "/nonexistent/candles.csv"],
     "--data: data path not found: /nonexistent/candles.csv"),
]


@pytest.mark.parametrize(("changes", "extra", "expected"),
                         [case[1:] for case in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_config_errors_exit_2_with_one_line_naming_the_field(
        capsys, write_config, tmp_path, changes, extra, expected):
    path = write_config(tiny_config(**changes))
    code, err = run_cli(capsys, "--config", str(path), "--log-dir", str(tmp_path / "logs"), *extra)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("cryptosweep: error: ")
    assert expected in lines[0], lines[0]
    assert not (tmp_path / "logs").exists(), "a rejected config must not create a run folder"


def test_missing_config_file(capsys, tmp_path):
    code, err = run_cli(capsys, "--config", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert err.strip() == f"cryptosweep: error: config file not found: {tmp_path}/nope.yaml"


def test_malformed_yaml_and_json(capsys, tmp_path):
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("random:\n  n_trials: [1, 2\n")
    code, err = run_cli(capsys, "--config", str(bad_yaml))
    assert code == 2 and "is not valid YAML: line" in err and len(err.strip().splitlines()) == 1
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"sweep_type": "random",}')
    code, err = run_cli(capsys, "--config", str(bad_json))
    assert code == 2 and "is not valid JSON: line 1" in err


def test_yaml_uses_the_safe_loader(capsys, tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    code, err = run_cli(capsys, "--config", str(evil))
    assert code == 2 and "is not valid YAML" in err


def test_bad_flag_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--gpu-ids", "zero"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--gpu-ids" in err[0]


def test_gpu_ids_without_gpu_is_exit_3(capsys, write_config, tmp_path):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, err = run_cli(capsys, "--config", str(write_config(tiny_config())), "--gpu-ids", "0",
                        "--log-dir", str(tmp_path))
    assert code == 3 and "--gpu-ids 0" in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*/sweep.db")), "no run folder for a sweep that never started"


def test_errors_are_one_line_without_traceback_in_a_real_process(write_config, tmp_path):
    path = write_config(tiny_config(random__n_trials=-1))
    done = cli("run", "--config", str(path), "--log-dir", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"cryptosweep: error: {path}: random.n_trials: Input should be greater than or equal to 1"
    ]
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_canonical_config_round_trips_through_json(write_config):
    config = load_config(write_config(tiny_config()))
    again = load_config(raw=json.loads(json.dumps(config.canonical())))
    assert again == config


def test_relative_data_path_is_resolved_against_the_config_file(tmp_path: Path):
    folder = tmp_path / "cfg"
    folder.mkdir()
    (folder / "candles.csv").write_text("x")
    path = folder / "sweep.json"
    path.write_text(json.dumps(tiny_config(data__path="candles.csv")))
    assert load_config(path).data.path == str((folder / "candles.csv").resolve())


def test_bad_data_file_is_exit_2_before_any_run_folder(capsys, write_config, tmp_path):
    bad = tmp_path / "candles.csv"
    bad.write_text("open_time,open,high,low,close,volume,close_time\n"
                   "1633046400000,43820.01,44059,43661.63,43694.48,2001.5,1633049999999\n"
                   "1633050000000,43696.14,43000.00,43417.61,43742.74,1292.5,1633053599999\n")
    code, err = run_cli(capsys, "--config", str(write_config(tiny_config())), "--data", str(bad),
                        "--log-dir", str(tmp_path / "logs"))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert str(bad) in err and "high" in err
    assert not (tmp_path / "logs").exists()


def test_folds_that_do_not_fit_the_data_are_exit_2(capsys, write_config, tmp_path):
    path = write_config(tiny_config(objective__folds=40, objective__min_train_bars=5000))
    code, err = run_cli(capsys, "--config", str(path), "--log-dir", str(tmp_path / "logs"))
    assert code == 2 and "objective:" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "logs").exists()


def test_validate_checks_config_and_data_without_running(write_config, tmp_path):
    good = cli("validate", "--config", str(write_config(tiny_config())))
    assert good.returncode == 0 and good.stdout.startswith("ok: tiny: random, 6 evaluations")
    bad = cli("validate", "--config", str(write_config(tiny_config(random__n_trials=0))))
    assert bad.returncode == 2 and "random.n_trials" in bad.stderr


def test_a_config_with_full_budget_validates_again_from_its_journaled_form(write_config):
    # The journaled (canonical) form once carried hyperband.max_iter's default next to
    # full_budget, which validation refused: no such run could be resumed.
    raw = tiny_config(full_budget=3)
    del raw["hyperband"]
    config = load_config(write_config(raw))
    again = validate_config(config.canonical())
    assert again.full_budget_units == 3 and again.results_hash() == config.results_hash()
