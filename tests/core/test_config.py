"""Configuration: loading, overrides, and one clear line with exit code 2 for each user error."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from cryptosweep.cli import main
from cryptosweep.core.config_files import load_config, validate_config
from cryptosweep.core.errors import ConfigError
from tests.support import REPO, cli, tiny_config


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


def test_hyperband_and_bohb_default_to_folds_and_a_stored_config_to_rounds(write_config):
    """A new Hyperband or BOHB run that names no fidelity gets folds (it ranks best); every
    other strategy, a named fidelity and a stored config without the key keep theirs."""
    def fidelity(config: dict, *overrides: str) -> str:
        return load_config(write_config(config), list(overrides)).objective.fidelity

    assert fidelity(tiny_config(sweep_type="hyperband")) == "folds"
    assert fidelity(tiny_config(sweep_type="hyperband", hyperband__sampler="tpe")) == "folds"
    assert fidelity(tiny_config()) == "rounds"  # random search: every evaluation at R
    assert fidelity(tiny_config(sweep_type="hyperband", objective__fidelity="rounds")) == "rounds"
    assert fidelity(tiny_config(), "sweep_type=hyperband") == "folds"
    assert fidelity(tiny_config(sweep_type="hyperband"), "objective.fidelity=bars") == "bars"
    new = load_config(write_config(tiny_config(sweep_type="hyperband")))
    assert new.canonical()["objective"]["fidelity"] == "folds"  # recorded: not the old default
    made = new.canonical()
    del made["objective"]["fidelity"]  # how a run made with rounds stored its config
    assert validate_config(made).objective.fidelity == "rounds"
    assert load_config(raw=made, stored=True).objective.fidelity == "rounds"
    assert load_config(raw=new.canonical(), stored=True).results_hash() == new.results_hash()


def test_overrides_are_yaml_scalars_and_reach_nested_keys(write_config):
    path = write_config(tiny_config())
    config = load_config(path, ["random.n_trials=11", "objective.fees_bps=2.5",
                                "parameter_ranges.trading.threshold.high=0.7",
                                "execution.scheduler_address=null"])
    assert config.random.n_trials == 11
    assert config.objective.fees_bps == 2.5
    assert config.parameter_ranges.trading["threshold"].high == 0.7
    assert config.execution.scheduler_address is None


def test_validate_refuses_a_scheduler_address_with_a_password_without_showing_it(
        write_config, capsys):
    """`validate` said ok to execution.scheduler_address tcp://alice:PW@host:port, which `run`
    then refused echoing the password; now it is exit 2 without it."""
    path = write_config(tiny_config())
    code = main(["validate", "--config", str(path), "--set",
                 "execution.scheduler_address=tcp://alice:hook-s3cr3t-42@127.0.0.1:8786"])
    captured = capsys.readouterr()
    assert code == 2 and "execution.scheduler_address: a dask address holds no user" in \
        captured.err
    assert "s3cr3t" not in captured.err + captured.out


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


def test_relative_ledger_and_champion_paths_are_resolved_against_the_config_file(tmp_path):
    """A relative deployment.ledger stayed relative in the run's stored config: the sweep
    wrote it under the directory it ran from, and evaluate from another directory recorded
    its look in a new ledger there."""
    folder = tmp_path / "cfg"
    folder.mkdir()
    path = folder / "sweep.json"
    path.write_text(json.dumps(tiny_config(deployment__ledger="ledgers/trials.db",
                                           deployment__champion_dir="models/champion")))
    deployment = load_config(path).deployment
    assert deployment.ledger == str(folder / "ledgers" / "trials.db")
    assert deployment.champion_dir == str(folder / "models" / "champion")


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
    hyperband = cli("validate", "--config", str(write_config(tiny_config(sweep_type="hyperband"))))
    assert hyperband.returncode == 0, hyperband.stderr
    assert hyperband.stdout.startswith("ok: tiny: hyperband (fidelity folds), ")
    # continue_training asked for where it cannot act (only rounds continue) is said, once.
    idle = cli("validate", "--config", str(write_config(tiny_config(
        sweep_type="hyperband", hyperband__continue_training=True))))
    assert idle.stdout.startswith("ok: tiny: hyperband (fidelity folds; hyperband."
                                  "continue_training applies to rounds only), "), idle.stdout
    acting = cli("validate", "--config", str(write_config(tiny_config(
        sweep_type="hyperband", hyperband__continue_training=True, objective__fidelity="rounds"))))
    assert acting.stdout.startswith("ok: tiny: hyperband (fidelity rounds), ")
    bad = cli("validate", "--config", str(write_config(tiny_config(random__n_trials=0))))
    assert bad.returncode == 2 and "random.n_trials" in bad.stderr


def test_validate_warns_that_without_a_holdout_nothing_can_be_approved(write_config, capsys):
    """`data.holdout_fraction: 0` passed validate with "ok ... (0 held out)", and every night's
    gate then rejected its winner for want of a holdout without the config saying why."""
    path = write_config(tiny_config(data__holdout_fraction=0.0))
    assert main(["validate", "--config", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("ok: tiny: random") and "0 held out)" in out
    assert "warning: data.holdout_fraction is 0: no holdout, so the deployment gate rejects" in err
    assert main(["validate", "--config", str(write_config(tiny_config()))]) == 0
    assert "warning" not in capsys.readouterr().err


# ------------------------------------------------- issue #13: configs that used to pass or crash

def _lightgbm(**dims):
    return {"parameter_ranges__lightgbm": {
        "num_leaves": {"type": "int", "low": 4, "high": 32}, **dims}}


def _trading(**changes):
    trading = tiny_config()["parameter_ranges"]["trading"]
    trading.update(changes)
    return {"parameter_ranges__trading": {k: v for k, v in trading.items() if v is not None}}


#: Configs that `validate` called ok (or crashed on) and `run` then ran wrongly: each must be
#: one line naming the key, exit 2, from `validate` and from `run` before any folder exists.
SILENT_CASES = [
    ("empty trading block", {"parameter_ranges__trading": {}}, [],
     "parameter_ranges.trading: missing threshold, holding_period, stop_loss, take_profit"),
    ("missing threshold", _trading(threshold=None), [],
     "parameter_ranges.trading: missing threshold"),
    ("unknown trading key", _trading(stop_los={"type": "float", "low": 0.1, "high": 0.2}), [],
     "parameter_ranges.trading.stop_los: unknown trading parameter"),
    ("negative stop loss", _trading(stop_loss={"type": "float", "low": -0.05, "high": 0.05}), [],
     "parameter_ranges.trading.stop_loss: values must be in (0, 1), got -0.05"),
    ("holding period 0", _trading(holding_period={"type": "categorical", "choices": [0, 4]}),
     [], "parameter_ranges.trading.holding_period: values must be in [1, 1e+06], got 0"),
    ("fractional holding period", _trading(
        holding_period={"type": "float", "low": 1.0, "high": 5.0}), [],
     "parameter_ranges.trading.holding_period: whole bars"),
    ("threshold of 1", _trading(threshold={"type": "float", "low": 0.5, "high": 1.0}), [],
     "parameter_ranges.trading.threshold: values must be in (0, 1), got 1.0"),
    ("misspelled hyperparameter", _lightgbm(num_leavs={"type": "int", "low": 4, "high": 8}), [],
     "parameter_ranges.lightgbm.num_leavs: not a lightgbm parameter (did you mean num_leaves?)"),
    ("bad boosting choice", _lightgbm(boosting={"type": "categorical",
                                                "choices": ["gbdt", "bogus"]}), [],
     "parameter_ranges.lightgbm.boosting: lightgbm refuses 'bogus'"),
    ("bad numeric bound", _lightgbm(num_leaves={"type": "int", "low": 1, "high": 8}), [],
     "parameter_ranges.lightgbm.num_leaves: lightgbm refuses 1"),
    ("torch parameter unknown", {"objective__models": ["torch"], "parameter_ranges__torch": {
        "hidden": {"type": "int", "low": 4, "high": 8}}}, [],
     "parameter_ranges.torch.hidden: not a torch parameter (did you mean hidden_units?)"),
    ("boolean count", {"hyperband__max_iter": True, "sweep_type": "hyperband"}, [],
     "hyperband.max_iter: Input should be a valid integer, got True"),
    ("fractional count", {"random__n_trials": 2.5}, [],
     "random.n_trials: Input should be a valid integer, got 2.5"),
    ("seed past 2**63", {"seed": 2**64}, [], "seed: Input should be less than or equal to"),
    ("too many random trials", {"random__n_trials": 10**12}, [],
     "random.n_trials: Input should be less than or equal to 100000"),
    ("hyperband too large", {"sweep_type": "hyperband", "hyperband__max_iter": 10**6,
                             "objective__rounds_per_unit": 1}, [],
     "hyperband: 1 iteration(s) of max_iter=1000000, eta=3 plan"),
    ("hyperband iterations too many", {"sweep_type": "hyperband", "hyperband__iterations":
                                       10**5, "hyperband__max_iter": 9}, [],
     "hyperband: 100000 iteration(s) of max_iter=9, eta=3 plan 2200000 evaluations"),
    ("rounds per evaluation unbounded", {"hyperband__max_iter": 10**6}, [],
     "hyperband.max_iter (1000000) x objective.rounds_per_unit (5) = 5e+06 rounds per "
     "evaluation"),
    ("grid too large", {"sweep_type": "grid", "grid__points": 200}, [],
     "grid: 78926400000000 combinations exceed"),
    ("threads past the cores", {"objective__threads_per_trial": 1000}, [],
     "objective.threads_per_trial: 1000 threads per trial, more than the"),
    ("seed flag past 2**63", {}, ["--seed", str(2**64)], "--seed: expected a whole number in"),
    # `run` made its folder and journal, then died in a traceback: a run is stored as JSON.
    ("infinite categorical choice", _lightgbm(learning_rate={
        "type": "categorical", "choices": [0.1, math.inf]}), [],
     "parameter_ranges.lightgbm.learning_rate.choices: a numeric choice must be finite, got inf"),
    ("NaN categorical choice", _trading(take_profit={"type": "categorical",
                                                     "choices": [math.nan]}), [],
     "parameter_ranges.trading.take_profit.choices: a numeric choice must be finite, got nan"),
    # A step longer than the range drew `low` in every trial, whatever the range said.
    ("int step longer than the range", _lightgbm(num_leaves={
        "type": "int", "low": 4, "high": 32, "step": 50}), [],
     "parameter_ranges.lightgbm.num_leaves: step (50) is longer than high - low (28)"),
    ("float step longer than the range", _trading(stop_loss={
        "type": "float", "low": 0.02, "high": 0.06, "step": 0.5}), [],
     "parameter_ranges.trading.stop_loss: step (0.5) is longer than high - low (0.04)"),
    # Optuna's step count (28-digit decimals) raised DivisionImpossible in the first batch.
    ("float step finer than 12 decimals", {"sweep_type": "bayesian", **_trading(threshold={
        "type": "float", "low": 0.5, "high": 0.6, "step": 1e-300})}, [],
     "parameter_ranges.trading.threshold: step (1e-300) must be at least 1e-12"),
    # Two names of one LightGBM parameter: it used one of the values and ignored the other.
    ("one parameter under two names", _lightgbm(
        eta={"type": "float", "low": 0.05, "high": 0.3},
        learning_rate={"type": "float", "low": 0.05, "high": 0.3}), [],
     "parameter_ranges.lightgbm.learning_rate: the same lightgbm parameter as .eta "
     "(learning_rate)"),
]


@pytest.mark.parametrize(("changes", "extra", "expected"),
                         [case[1:] for case in SILENT_CASES], ids=[c[0] for c in SILENT_CASES])
def test_configs_that_cannot_run_fail_validate_and_run_with_one_line(
        capsys, write_config, tmp_path, changes, extra, expected):
    path = write_config(tiny_config(**changes))
    logs = tmp_path / "logs"
    for command in (["validate"], ["run", "--log-dir", str(logs)]):
        if command == ["validate"] and extra:
            continue  # --seed is a flag of run only
        try:
            code = main([*command, "--config", str(path), *extra])
        except SystemExit as exc:  # argparse's own errors
            code = exc.code
        err = capsys.readouterr().err
        assert code == 2, (command, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (command, lines)
    assert not logs.exists(), "a rejected config must not create a run folder"


CONFIG_FILES = [
    ("latin-1", "sweep.yaml", "name: caf\xe9\n".encode("latin-1"),
     "is not UTF-8 text: byte 0xe9 at offset 9"),
    ("utf-16", "sweep.yaml", "name: x\n".encode("utf-16"), "is not UTF-8 text (it looks like "
     "UTF-16)"),
    ("deep yaml", "sweep.yaml", ("a: " + "[" * 5000 + "]" * 5000).encode(),
     "nested deeper than 32 levels"),
    ("deep json", "sweep.json", ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}").encode(),
     "nested deeper than 32 levels"),
    ("duplicate yaml key", "sweep.yaml", b"name: a\nseed: 1\nname: b\n",
     "line 3: key 'name' appears twice in one mapping"),
    ("duplicate json key", "sweep.json", b'{"random": {"n_trials": 3, "n_trials": 4}}',
     "key 'n_trials' appears twice in one mapping"),
    ("impossible yaml date", "sweep.yaml", b"name: 2024-13-45\n", "a value cannot be read"),
    ("huge json integer", "sweep.json", b'{"seed": ' + b"9" * 5000 + b"}",
     "a value cannot be read"),
]


@pytest.mark.parametrize(("name", "data", "expected"), [case[1:] for case in CONFIG_FILES],
                         ids=[c[0] for c in CONFIG_FILES])
def test_unreadable_config_files_are_one_line_exit_2(capsys, tmp_path, name, data, expected):
    path = tmp_path / name
    path.write_bytes(data)
    code, err = run_cli(capsys, "--config", str(path), "--log-dir", str(tmp_path / "logs"))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"cryptosweep: error: config file {path}") and expected in lines[0]
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize("name", ["../../escape", "<absolute>", "a/b", "..", "line\nbreak", ""])
def test_a_run_name_is_one_plain_path_component(capsys, write_config, tmp_path, name):
    """`--run-name ../../escape` (or an absolute path, or a newline) wrote outside --log-dir."""
    logs = tmp_path / "nest" / "logs"
    name = str(tmp_path / "absolute") if name == "<absolute>" else name
    code, err = run_cli(capsys, "--config", str(write_config(tiny_config())), "--log-dir",
                        str(logs), "--run-name", name)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "--run-name" in err and "one plain folder name" in err
    assert not (tmp_path / "nest").exists() and not (tmp_path / "escape").exists()
    assert not (tmp_path / "absolute").exists()


def test_a_run_names_refusal_says_what_a_run_name_may_be():
    """The refusal said "letters, digits, '_', '-', '.'" while any printable name was taken
    (users' runs are called so): it says what is accepted, and such names stay accepted."""
    from cryptosweep.core.errors import UserError
    from cryptosweep.sweep.opening import check_run_name

    for name in ("night#1?x=%41", '<svg onload=alert(1)> "q" $x$', "nuit d'été", "a" * 200):
        assert check_run_name(name) == name
    for name in ("a/b", "a\\b", ".", "..", " lead", "line\nbreak", "é" * 101):
        with pytest.raises(UserError) as refused:
            check_run_name(name)
        message = str(refused.value)
        assert "letters, digits" not in message
        assert message.endswith(
            ": expected one plain folder name (printable characters, spaces, '#', '?', '%' "
            "and non-ASCII letters included; not '.' or '..', no '/' or '\\', no space at "
            "either end, no control characters, at most 200 bytes in UTF-8)"), message


def test_the_seed_rule_refuses_seeds_no_framework_holds(write_config):
    """The API, the notebook and the nightly (SWEEP_SEED) go through resolve_seed: a seed of
    2**64 overflowed torch after the run folder existed (issue #13)."""
    from cryptosweep.core.config import resolve_seed
    from cryptosweep.core.errors import ConfigError
    from cryptosweep.core.settings import MAX_SEED

    config = load_config(write_config(tiny_config()))
    assert resolve_seed(MAX_SEED, config) == MAX_SEED and resolve_seed(None, config) == 123456
    for seed in (2**64, MAX_SEED + 1, -1, 2.5, True):
        with pytest.raises(ConfigError, match=r"seed: expected a whole number in \[0, "):
            resolve_seed(seed, config)


def test_a_config_with_full_budget_validates_again_from_its_journaled_form(write_config):
    # The journaled (canonical) form once carried hyperband.max_iter's default next to
    # full_budget, which validation refused: no such run could be resumed.
    raw = tiny_config(full_budget=3)
    del raw["hyperband"]
    config = load_config(write_config(raw))
    again = validate_config(config.canonical())
    assert again.full_budget_units == 3 and again.results_hash() == config.results_hash()


def test_full_budget_and_max_iter_of_one_budget_are_the_same_results(write_config):
    """A run made with hyperband.max_iter: 4, resumed with a config that says full_budget: 4
    (the newer spelling of the same budget), was refused as differing "in what decides its
    results (full_budget)" (a helper's attack)."""
    from cryptosweep.core.config import named_differences

    old = tiny_config(sweep_type="hyperband", hyperband={"max_iter": 4, "eta": 2})
    new = tiny_config(sweep_type="hyperband", hyperband={"eta": 2}, full_budget=4)
    made, given = load_config(write_config(old)), load_config(write_config(new, "new.yaml"))
    assert made.results_hash() == given.results_hash()
    assert named_differences(given.canonical(), made.canonical()) == ""
    other = load_config(raw=tiny_config(sweep_type="hyperband", hyperband={"eta": 2},
                                        full_budget=8))
    # Another budget still differs (named as the budget in force, hyperband.max_iter).
    assert named_differences(other.canonical(), made.canonical()) == "hyperband.max_iter"
    assert other.results_hash() != made.results_hash()


# ------------------------------------- hostile inputs: each ends in one line, before anything

def _alias_bomb() -> bytes:
    lines = ["x0: &x0 [a, b, c, d, e, f, g, h, i, j]"]
    lines += [f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 10) + "]" for i in range(1, 10)]
    return ("\n".join(lines) + "\ndescription: *x9\n").encode()


def test_a_yaml_alias_bomb_is_refused_at_once(capsys, tmp_path):
    """Ten levels of ten aliases (600 bytes) made the nesting check visit 10^10 nodes."""
    path = tmp_path / "bomb.yaml"
    path.write_bytes(_alias_bomb())
    assert len(path.read_bytes()) < 700
    code, err = run_cli(capsys, "--config", str(path), "--log-dir", str(tmp_path / "logs"))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "once its aliases are expanded" in lines[0], err
    assert not (tmp_path / "logs").exists()


def test_a_yaml_merge_key_is_read_and_a_key_given_twice_still_refused(tmp_path):
    """`<<: *anchor` (YAML's merge key) was refused as an unknown tag."""
    from cryptosweep.core.config_files import read_config_file

    path = tmp_path / "merge.yaml"
    path.write_text("rate: &rate {type: float, low: 0.05, high: 0.3}\n"
                    "learning_rate:\n  <<: *rate\n  high: 0.2\n", encoding="utf-8")
    assert read_config_file(path)["learning_rate"] == {"type": "float", "low": 0.05,
                                                       "high": 0.2}
    twice = tmp_path / "twice.yaml"
    twice.write_text("a: &a {x: 1}\nb:\n  <<: *a\n  y: 1\n  y: 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="key 'y' appears twice"):
        read_config_file(twice)


def test_an_unquoted_yaml_date_is_a_timestamp(write_config):
    path = write_config(tiny_config())
    path.write_text(path.read_text() + "data:\n  start: 2022-01-01\n  end: 2022-06-01 12:00:00\n")
    config = load_config(path)
    assert config.data.start == "2022-01-01T00:00:00+00:00"
    assert config.data.end == "2022-06-01T12:00:00+00:00"
    config = load_config(write_config(tiny_config()), ["data.start=2022-01-01"])
    assert config.data.start == "2022-01-01T00:00:00+00:00"
    quoted = load_config(write_config(tiny_config(data__start="2022-01-01")))
    assert quoted.results_hash() == config.results_hash()


@pytest.mark.parametrize(("key", "written"), [
    ("objective.folds", "010"),  # YAML 1.1: octal 8
    ("objective.folds", "0x4"),  # YAML 1.1: 4
    ("random.n_trials", "1_0"),  # YAML 1.1: 10
    ("seed", "1:30"),  # YAML 1.1: sexagesimal 90
    ("objective.allow_short", "yes"),  # YAML 1.1: true
    ("objective.allow_short", "off"),  # YAML 1.1: false
])
def test_yaml_1_1_numbers_and_booleans_are_refused_not_misread(write_config, key, written):
    """`folds: 010` ran 8 folds, `groups: 0x10` 16, `enabled: yes` was true: a run other than
    the one written. Configs read YAML 1.2; what 1.1 would have turned into a number or a
    boolean is refused, naming the key and saying how to write it, from a file and --set."""
    path = write_config(tiny_config(**{key.replace(".", "__"): "WRITTEN"}))
    path.write_text(path.read_text().replace("WRITTEN", written))  # unquoted, as a person would
    expected = f"{key}: Input should be a valid .*, got '{written}' \\(configs read YAML 1.2"
    with pytest.raises(ConfigError, match=expected):
        load_config(path)
    with pytest.raises(ConfigError, match=expected):
        load_config(write_config(tiny_config()), [f"{key}={written}"])


def test_yaml_1_2_numbers_are_read_as_written(write_config):
    """Decimal floats with an exponent (a string under PyYAML's YAML 1.1 rules) are numbers."""
    config = load_config(write_config(tiny_config()), [
        "objective.fees_bps=1e1", "objective.slippage_bps=2.5E-1", "random.n_trials=+7",
        "objective.allow_short=True"])
    assert (config.objective.fees_bps, config.objective.slippage_bps) == (10.0, 0.25)
    assert config.random.n_trials == 7 and config.objective.allow_short is True


HOSTILE_VALUES = [
    ("infinite fees", ["objective.fees_bps=.inf"], "objective.fees_bps: Input should be a finite"),
    ("infinite slippage", ["objective.slippage_bps=.inf"],
     "objective.slippage_bps: Input should be a finite"),
    ("infinite trial timeout", ["execution.trial_timeout=.inf"],
     "execution.trial_timeout: Input should be a finite"),
    ("slippage 1e6", ["objective.slippage_bps=1000000"], "objective.slippage_bps: Input should be "
     "less than 10000"),
    ("fees 1e308", ["objective.fees_bps=1.0e+308"], "objective.fees_bps: Input should be less"),
    ("fees and slippage past the price", ["objective.fees_bps=6000",
                                          "objective.slippage_bps=5000"],
     "fees_bps + slippage_bps (6000 + 5000) must be below 10000 bps"),
    ("rounds to zero rounds", ["objective.rounds_per_unit=0.1"],
     "objective.rounds_per_unit (0.1) x the smallest budget (2) rounds to 0 boosting rounds"),
    ("workers past the bound", ["execution.workers=100000"],
     "execution.workers: Input should be less than or equal to 1024"),
    ("start in year 9999", ["data.start=9999-01-01"],
     "data.start/data.end: the range [9999-01-01T00:00:00+00:00, after the last bar) holds 0"),
]


@pytest.mark.parametrize(("overrides", "expected"), [case[1:] for case in HOSTILE_VALUES],
                         ids=[case[0] for case in HOSTILE_VALUES])
def test_hostile_values_are_one_line_from_validate(capsys, write_config, overrides, expected):
    args = [arg for override in overrides for arg in ("--set", override)]
    code = main(["validate", "--config", str(write_config(tiny_config())), *args])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and expected in lines[0], lines


def test_workers_flag_is_bounded(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--config", "x.yaml", "--workers", "100000"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and "[0, 1024]" in err[0]


@pytest.mark.parametrize(("key", "hint"), [
    ("objective__fold", "objective.fold: unknown key (did you mean 'folds'?)"),
    ("data__holdout_fracton", "data.holdout_fracton: unknown key (did you mean "
                              "'holdout_fraction'?)"),
    ("sweep_tipe", "sweep_tipe: unknown key (did you mean 'sweep_type'?)"),
    ("objective__zzz", "objective.zzz: unknown key"),
])
def test_an_unknown_key_gets_a_did_you_mean(key, hint):
    from cryptosweep.core.config_files import validate_config
    from cryptosweep.core.errors import ConfigError
    from tests.support import tiny_config

    with pytest.raises(ConfigError) as caught:
        validate_config(tiny_config(**{key: 3}))
    message = str(caught.value)
    assert hint in message and "\n" not in message
    if key == "objective__zzz":
        assert "did you mean" not in message


def test_evidence_section_is_typed_strict_and_out_of_the_results_hash():
    base = validate_config(tiny_config())
    assert base.evidence.cpcv.enabled is False and base.evidence.cpcv.groups == 6
    assert base.evidence.regimes.trend_lookback == 24 and base.evidence.markets == []
    evidence = {"cpcv": {"enabled": True, "groups": 4, "test_groups": 2,
                         "min_path_quantile": 0.0},
                "markets": [{"name": "other", "data": {"path": "x.csv", "format": "generic"}}]}
    changed = validate_config(tiny_config(evidence=evidence))
    assert changed.evidence.cpcv.min_path_quantile == 0.0
    assert changed.results_hash() == base.results_hash()
    for bad, word in (({"cpcv": {"groups": 4, "test_groups": 4}}, "test_groups"),
                      ({"cpcv": {"paths": 3}}, "paths"),
                      ({"markets": [{"name": "a", "data": {}}, {"name": "a", "data": {}}]},
                       "distinct"),
                      ({"regimes": {"trend_lookback": 0}}, "trend_lookback")):
        with pytest.raises(ConfigError, match=word):
            validate_config(tiny_config(evidence=bad))


def test_a_refused_resume_names_the_settings_that_decide_results_and_only_those():
    from cryptosweep.core.config import named_differences, results_differences

    stored = load_config(raw=tiny_config()).canonical()
    given = load_config(raw=tiny_config(
        objective__fees_bps=9.0, random__n_trials=7, execution__workers=3,
        deployment__min_dsr=0.5)).canonical()
    assert results_differences(given, stored) == ["objective.fees_bps", "random.n_trials"]
    assert results_differences(stored, stored) == []
    assert named_differences(given, stored, most=1) == "objective.fees_bps and 1 more"


def test_full_budget_against_a_config_naming_max_iter_says_which_to_change():
    """A new user: --set full_budget=3 on the demo config (which names hyperband.max_iter: 9)
    was told to "set only full_budget", which --set cannot do."""
    done = cli("validate", "--config", str(REPO / "parameters" / "demo.yaml"),
               "--set", "full_budget=3")
    assert done.returncode == 2
    assert "change that one (--set hyperband.max_iter=3)" in done.stderr, done.stderr
    fixed = cli("validate", "--config", str(REPO / "parameters" / "demo.yaml"),
                "--set", "hyperband.max_iter=3")
    assert fixed.returncode == 0, fixed.stderr


def test_a_symbolic_link_loop_as_a_path_is_one_line_exit_2(capsys, write_config, tmp_path):
    """``--data`` (or ``data.path``, ``deployment.champion_dir``) naming a symbolic link loop
    was a RuntimeError traceback from ``Path.resolve`` (a helper's attack); now one line,
    exit 2, before anything is created."""
    loop = tmp_path / "loop"
    loop.symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(loop)
    logs = tmp_path / "logs"
    config = write_config(tiny_config())
    code, err = run_cli(capsys, "--config", str(config), "--data", str(loop),
                        "--log-dir", str(logs))
    assert code == 2 and err.startswith(f"cryptosweep: error: --data: {loop}: cannot be "
                                        "resolved"), err
    assert len(err.splitlines()) == 1 and not logs.exists()
    for key, changes in (("data.path", {"data__path": "loop"}),
                         ("deployment.champion_dir", {"deployment__champion_dir": "loop"})):
        assert main(["validate", "--config", str(write_config(tiny_config(**changes)))]) == 2
        err = capsys.readouterr().err
        assert f"{key}: loop: cannot be resolved" in err and len(err.splitlines()) == 1, err


def test_an_empty_data_path_is_refused_not_read_as_the_current_folder(
        capsys, write_config, tmp_path, monkeypatch):
    """``--data ""`` (a shell variable unset: ``--data "$DATA"``) resolved to the current
    folder and loaded every candle file there; ``data.path: ""`` loaded the config's folder;
    ``--set data.path=`` the bundled sample (a helper's attack). Each is one line, exit 2."""
    config = write_config(tiny_config())
    monkeypatch.chdir(tmp_path)
    for data in ("", "  "):
        assert main(["validate", "--config", str(config), "--data", data]) == 2
        err = capsys.readouterr().err
        assert err.startswith("cryptosweep: error: --data: an empty path"), err
    assert main(["validate", "--config", str(write_config(tiny_config(data__path="")))]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cryptosweep: error: data.path: an empty path"), err
    # --set data.path=$DATA, the variable unset, read the bundled BTC sample without a word.
    assert main(["validate", "--config", str(config), "--set", "data.path="]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cryptosweep: error: --set 'data.path=': an empty path"), err
    assert "--set data.path=null reads the bundled sample" in err
    assert main(["validate", "--config", str(config), "--set", "data.path=null"]) == 0


def test_data_columns_reading_one_column_twice_are_refused():
    """``data.columns: {open: close}`` was accepted and every bar's open read as its close
    (fills, features and labels on wrong prices, nothing said), while ``--columns`` refuses the
    same mapping (a helper's attack)."""
    with pytest.raises(ConfigError, match=r"data\.columns: column 'close' is read as open and "
                                          r"close; each key needs a column of its own"):
        load_config(raw=tiny_config(data__columns={"open": "close"}))
    with pytest.raises(ConfigError, match=r"column 'price' is read as high and low"):
        load_config(raw=tiny_config(data__columns={"high": "price", "low": "price"}))
    swapped = load_config(raw=tiny_config(data__columns={"open": "close", "close": "open"}))
    assert swapped.data.columns.open == "close"
