"""Entry-model checkpoints: continuation from a checkpoint (Hyperband promotion), the files'
formats, the checks on continuation, the fallback to training from scratch, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cryptosweep.core.errors import ConfigError
from cryptosweep.core.reproducibility import ReproducibilityManager
from cryptosweep.core.vocabulary import MODEL_FAMILIES
from cryptosweep.trading import models
from cryptosweep.trading.models import (
    CHECKPOINT_FORMAT,
    CONTINUATION,
    CONTINUATION_EQUALS_SCRATCH,
    atomic_write,
    checkpoint_path,
    checkpoint_sidecar,
    make_entry_model,
    supports_continuation,
)

#: family, parameters with randomness in them (row/column sampling, dropout), budgets b < B
CASES: dict[str, tuple[str, dict[str, Any], int, int]] = {
    "lightgbm": ("lightgbm", {"num_leaves": 7, "feature_fraction": 0.8, "bagging_fraction": 0.8,
                              "min_data_in_leaf": 20}, 10, 30),
    "xgboost": ("xgboost", {"max_depth": 3, "subsample": 0.8, "colsample_bytree": 0.8}, 10, 30),
    "catboost": ("catboost", {"depth": 4}, 10, 30),  # random strength and bootstrap by default
    "torch": ("torch", {"hidden_units": 16, "dropout": 0.1, "learning_rate": 0.01,
                        "batch_size": 64}, 3, 8),
}  # fmt: skip
PICKLE_MARKER = b"\x80"  # every pickle protocol >= 2 starts with PROTO (0x80)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20240602)
    x = rng.normal(size=(700, 8))
    y = (x[:, 0] - 0.5 * x[:, 1] + 0.8 * rng.normal(size=700) > 0).astype(float)
    return x[:500], y[:500], x[500:]


def _model(family: str, params: dict[str, Any], seed: int = 11) -> Any:
    return make_entry_model(family, params, ReproducibilityManager(seed=seed))


def _trained(case: str, data: tuple[np.ndarray, ...], budget: int, folder: Path) -> Path:
    family, params, _, _ = CASES[case]
    model = _model(family, params)
    model.fit(data[0], data[1], budget)
    return model.save(checkpoint_path(folder, f"{case}-b{budget}", family))


def _continued(case: str, data: tuple[np.ndarray, ...], budget: int, checkpoint: Path) -> Any:
    family, params, _, _ = CASES[case]
    model = _model(family, params)
    model.fit(data[0], data[1], budget, init_from=checkpoint)
    assert model.last_fit_continued
    return model


def _rounds(model: Any) -> int:
    """Rounds/epochs in a fitted model, as its library counts them (torch: its sidecar)."""
    if model.family == "lightgbm":
        return model._booster.current_iteration()
    if model.family == "xgboost":
        return model._booster.num_boosted_rounds()
    if model.family == "catboost":
        return model._model.tree_count_
    return model._budget


def test_every_family_has_a_measured_decision():
    assert set(CONTINUATION) == set(MODEL_FAMILIES) == set(CONTINUATION_EQUALS_SCRATCH)
    assert all(isinstance(value, bool) for value in CONTINUATION.values())
    assert supports_continuation("lightgbm", {"num_leaves": 7})
    assert not supports_continuation("lightgbm", {"boosting": "rf"})
    assert not supports_continuation("lightgbm", {"boosting_type": "dart"})
    assert not supports_continuation("xgboost", {}, device="cuda:0")  # measured on CPU only
    with pytest.raises(ConfigError, match="unknown model family"):
        supports_continuation("sklearn", {})


@pytest.mark.parametrize("case", [case for case, spec in CASES.items() if CONTINUATION[spec[0]]])
def test_continuing_twice_gives_the_same_bytes(case, data, tmp_path):
    family, params, small, large = CASES[case]
    checkpoint = _trained(case, data, small, tmp_path)
    first = _continued(case, data, large, checkpoint)
    _model(family, params, seed=99).fit(data[0], data[1], small)  # another model in between
    second = _continued(case, data, large, checkpoint)
    assert _rounds(first) == _rounds(second) == large
    assert first.predict_proba(data[2]).tobytes() == second.predict_proba(data[2]).tobytes()
    if CONTINUATION_EQUALS_SCRATCH[family]:  # CatBoost's snapshot, torch's full state
        scratch = _model(family, params)
        scratch.fit(data[0], data[1], large)
        assert scratch.predict_proba(data[2]).tobytes() == first.predict_proba(data[2]).tobytes()
    # the budget of the checkpoint itself: the saved model, loaded
    same = _continued(case, data, small, checkpoint)
    saved = _model(family, params)
    saved.fit(data[0], data[1], small)
    assert same.predict_proba(data[2]).tobytes() == saved.predict_proba(data[2]).tobytes()


@pytest.mark.parametrize("family, params", [("lightgbm", {"num_leaves": 7}),
                                            ("xgboost", {"max_depth": 3})])  # fmt: skip
def test_without_sampling_continuation_equals_training_from_scratch(family, params, data,
                                                                    tmp_path):  # fmt: skip
    partial = _model(family, params)
    partial.fit(data[0], data[1], 10)
    checkpoint = partial.save(checkpoint_path(tmp_path, "m", family))
    continued, scratch = _model(family, params), _model(family, params)
    continued.fit(data[0], data[1], 30, init_from=checkpoint)
    scratch.fit(data[0], data[1], 30)
    assert continued.predict_proba(data[2]).tobytes() == scratch.predict_proba(data[2]).tobytes()


@pytest.mark.parametrize("case", list(CASES))
def test_checkpoint_is_the_library_format_not_pickle(case, data, tmp_path):
    family, params, small, _ = CASES[case]
    model = _model(family, params)
    model.fit(data[0], data[1], small)
    path = model.save(checkpoint_path(tmp_path, "m", family))
    sidecar = json.loads(checkpoint_sidecar(path).read_text(encoding="utf-8"))
    assert sidecar["format"] == CHECKPOINT_FORMAT and sidecar["family"] == family
    assert sidecar["budget"] == small and sidecar["files"]["model"]["name"] == path.name
    files = [tmp_path / entry["name"] for entry in sidecar["files"].values()]
    assert sorted(tmp_path.iterdir()) == sorted([*files, checkpoint_sidecar(path)])  # no temps
    for file in files:
        assert not file.read_bytes().startswith(PICKLE_MARKER)
    expected = model.predict_proba(data[2])
    if family == "lightgbm":
        import lightgbm

        assert path.read_text(encoding="utf-8").startswith("tree\n")
        loaded = lightgbm.Booster(model_file=str(path)).predict(data[2])
    elif family == "xgboost":
        import xgboost

        booster = xgboost.Booster(model_file=str(path))
        loaded = booster.predict(xgboost.DMatrix(data[2])).astype("float64")
    elif family == "catboost":
        from catboost import CatBoostClassifier

        assert path.read_bytes()[:4] == b"CBM1"
        assert set(sidecar["files"]) == {"model", "snapshot"}
        loaded = CatBoostClassifier().load_model(str(path)).predict_proba(data[2])[:, 1]
    else:
        assert path.read_bytes()[:2] == b"PK"  # NumPy's .npz: a zip of .npy arrays
        with np.load(path, allow_pickle=False) as archive:
            names = set(archive.files)
            assert all(archive[name].dtype != object for name in names)
        assert {"standardise:mean", "standardise:scale", "rng:init", "rng:masks",
                "net:0.weight", "adamw:0:exp_avg", "adamw:0:exp_avg_sq",
                "adamw:0:step"} <= names  # fmt: skip
        return
    assert loaded.tobytes() == expected.tobytes()


def test_xgboost_json_checkpoint_and_suffix_check(data, tmp_path):
    model = _model("xgboost", CASES["xgboost"][1])
    model.fit(data[0], data[1], 5)
    path = model.save(tmp_path / "m.json")  # the temporary name keeps the suffix: JSON format
    assert json.loads(path.read_text(encoding="utf-8"))["learner"]
    with pytest.raises(ValueError, match=r"\.ubj or \.json"):
        model.save(tmp_path / "m.bin")


@pytest.mark.parametrize("params", [{"boosting": "rf", "num_leaves": 15},
                                    {"boosting": "dart", "num_leaves": 7}])  # fmt: skip
def test_modes_without_continuation_retrain_from_scratch(params, data, tmp_path):
    partial = _model("lightgbm", params)
    assert not partial.continues
    partial.fit(data[0], data[1], 10)
    checkpoint = partial.save(checkpoint_path(tmp_path, "m", "lightgbm"))
    retrained, scratch = _model("lightgbm", params), _model("lightgbm", params)
    retrained.fit(data[0], data[1], 30, init_from=checkpoint)
    scratch.fit(data[0], data[1], 30)
    assert not retrained.last_fit_continued
    assert retrained._booster.current_iteration() == 30
    assert retrained.predict_proba(data[2]).tobytes() == scratch.predict_proba(data[2]).tobytes()
    retrained.fit(data[0], data[1], 5, init_from=tmp_path / "missing.txt")  # ignored as well
    assert not retrained.last_fit_continued


def test_continuation_checks_the_checkpoint(data, tmp_path):
    params = {"num_leaves": 7}
    model = _model("lightgbm", params)
    model.fit(data[0], data[1], 10)
    path = model.save(tmp_path / "m.txt")
    fresh = _model("lightgbm", params)
    with pytest.raises(ValueError, match="more than the budget 5"):
        fresh.fit(data[0], data[1], 5, init_from=path)
    with pytest.raises(ValueError, match="other parameters"):
        _model("lightgbm", params, seed=12).fit(data[0], data[1], 20, init_from=path)
    with pytest.raises(ValueError, match="other parameters"):
        _model("lightgbm", {"num_leaves": 8}).fit(data[0], data[1], 20, init_from=path)
    with pytest.raises(ValueError, match="other data"):
        fresh.fit(data[0][:-1], data[1][:-1], 20, init_from=path)
    with pytest.raises(ValueError, match="a lightgbm model, not xgboost"):
        _model("xgboost", {}).fit(data[0], data[1], 20, init_from=path)
    with pytest.raises(FileNotFoundError, match="no sidecar"):
        fresh.fit(data[0], data[1], 20, init_from=tmp_path / "other.txt")
    with path.open("a", encoding="utf-8") as handle:
        handle.write("\n")
    with pytest.raises(ValueError, match="does not match its sidecar"):
        fresh.fit(data[0], data[1], 20, init_from=path)
    assert not fresh._fitted  # nothing half-trained was kept
    with pytest.raises(RuntimeError, match="before fit"):
        fresh.save(tmp_path / "n.txt")


def test_catboost_resumes_past_its_budget_dependent_defaults(data, tmp_path):
    # CatBoost picks max_ctr_complexity from the iteration count (1 up to ~150, then 4) and
    # refuses a snapshot whose parameters differ: the adapter fixes it
    params = {"depth": 2, "learning_rate": 0.1}
    model = _model("catboost", params)
    model.fit(data[0], data[1], 20)
    path = model.save(tmp_path / "m.cbm")
    continued, scratch = _model("catboost", params), _model("catboost", params)
    continued.fit(data[0], data[1], 200, init_from=path)
    scratch.fit(data[0], data[1], 200)
    assert continued.last_fit_continued  # resumed, not retrained
    assert continued.predict_proba(data[2]).tobytes() == scratch.predict_proba(data[2]).tobytes()
    assert continued.params["leaf_estimation_iterations"] == 10
    assert _model("catboost", {"leaf_estimation_method": "Gradient"}).params.get(
        "leaf_estimation_iterations") is None  # fmt: skip


def test_catboost_retrains_when_catboost_refuses_the_snapshot(data, tmp_path, monkeypatch):
    params = {"depth": 2}
    model = _model("catboost", params)
    model.fit(data[0], data[1], 10)
    path = model.save(tmp_path / "m.cbm")
    refusing = _model("catboost", params)
    train = refusing._train

    def refuse(x, y, budget, snapshot):
        if snapshot is not None:
            raise models.catboost_adapter._SnapshotRefusedError("its parameters differ")
        train(x, y, budget, snapshot)

    monkeypatch.setattr(refusing, "_train", refuse)
    refusing.fit(data[0], data[1], 30, init_from=path)
    scratch = _model("catboost", params)
    scratch.fit(data[0], data[1], 30)
    assert not refusing.last_fit_continued
    assert refusing.predict_proba(data[2]).tobytes() == scratch.predict_proba(data[2]).tobytes()


def test_catboost_one_class_checkpoint(data, tmp_path):
    zeros = np.zeros(len(data[1]))
    model = _model("catboost", {"depth": 3})
    model.fit(data[0], zeros, 5)
    path = model.save(tmp_path / "m.cbm")
    again = _model("catboost", {"depth": 3})
    again.fit(data[0], zeros, 9, init_from=path)
    assert again.last_fit_continued and not again.predict_proba(data[2]).any()
    with pytest.raises(ConfigError, match="snapshot_file"):
        _model("catboost", {"snapshot_file": str(tmp_path / "s")})


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "model.txt"

    def fails(tmp: Path) -> None:
        assert tmp.parent == tmp_path and tmp.suffix == ".txt" and tmp != target
        tmp.write_text("half a mod", encoding="utf-8")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, fails)
    assert list(tmp_path.iterdir()) == []
    digest = atomic_write(target, lambda tmp: tmp.write_text("whole", encoding="utf-8"))
    assert target.read_text(encoding="utf-8") == "whole" and len(digest) == 40
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, fails)
    assert target.read_text(encoding="utf-8") == "whole"  # the old file is untouched
    assert list(tmp_path.iterdir()) == [target]


def test_failed_save_keeps_the_previous_checkpoint(data, tmp_path, monkeypatch):
    model = _model("lightgbm", {"num_leaves": 7})
    model.fit(data[0], data[1], 10)
    path = model.save(tmp_path / "m.txt")
    before = {file.name: file.read_bytes() for file in tmp_path.iterdir()}
    model.fit(data[0], data[1], 20)

    def broken(filename: str, **_: Any) -> None:
        Path(filename).write_text("tree\nversion=v4\n", encoding="utf-8")  # cut short
        raise OSError("disk full")

    monkeypatch.setattr(model._booster, "save_model", broken)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert {file.name: file.read_bytes() for file in tmp_path.iterdir()} == before
    fresh = _model("lightgbm", {"num_leaves": 7})
    fresh.fit(data[0], data[1], 20, init_from=path)  # the old checkpoint still works
    assert fresh.last_fit_continued


def test_adapters_follow_the_protocol():
    repro = ReproducibilityManager(seed=1)
    for family in MODEL_FAMILIES:
        model = make_entry_model(family, {}, repro)
        assert isinstance(model, models.ContinuableEntryModel)
        assert model.continues is supports_continuation(family, model.params, model.device)


@pytest.mark.parametrize("case", list(CASES))
def test_a_saved_model_loads_without_its_training_data_and_predicts_the_same_bytes(
        case, data, tmp_path):
    family, params, budget, _ = CASES[case]
    model = _model(family, params)
    model.fit(data[0], data[1], budget)
    path = model.save(checkpoint_path(tmp_path, "model", family))
    loaded = _model(family, params)
    loaded.load(path)
    assert loaded.predict_proba(data[2]).tobytes() == model.predict_proba(data[2]).tobytes()
    again = loaded.save(checkpoint_path(tmp_path, "saved-again", family))  # a loaded model saves
    reloaded = _model(family, params)
    reloaded.load(again)
    assert reloaded.predict_proba(data[2]).tobytes() == model.predict_proba(data[2]).tobytes()
    with pytest.raises(ValueError, match=r"cannot load checkpoint .*other parameters"):
        _model(family, params, seed=12).load(path)
    with open(path, "ab") as handle:
        handle.write(b" ")
    with pytest.raises(ValueError, match="does not match its sidecar"):
        _model(family, params).load(path)


def test_a_one_class_catboost_model_loads(data, tmp_path):
    model = _model("catboost", {"depth": 4})
    model.fit(data[0], np.ones(len(data[0])), 5)
    loaded = _model("catboost", {"depth": 4})
    loaded.load(model.save(checkpoint_path(tmp_path, "constant", "catboost")))
    assert (loaded.predict_proba(data[2]) == 1.0).all()
