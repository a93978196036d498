"""The public API: every name in ``cryptosweep.__all__`` resolves, lazily, to the object its
module defines, and ``import cryptosweep`` alone loads none of the heavy layers."""

from __future__ import annotations

import subprocess
import sys

import cryptosweep

#: The names users were promised (the README, the design's integration example).
PROMISED = {
    "run_sweep", "SweepResult", "load_config", "SweepConfig", "setup_crypto_gpu_reproducibility",
    "ReproducibilityManager", "derive_seed", "system_info", "HyperbandRunner", "train_model",
    "load_model", "TrainedModel", "load_ohlcv", "build_features", "hyperband_brackets",
    "deflated_sharpe_ratio", "probabilistic_sharpe_ratio", "probability_of_backtest_overfitting",
}


def test_every_promised_name_is_public_and_resolves() -> None:
    assert set(cryptosweep.__all__) >= PROMISED | {"__version__"}
    for name in cryptosweep.__all__:
        value = getattr(cryptosweep, name)
        if name != "__version__":
            assert value.__name__ == name, name


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        cryptosweep.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("no AttributeError")


def test_importing_the_package_stays_cheap() -> None:
    code = ("import sys, cryptosweep; heavy = [m for m in ('pandas', 'torch', 'lightgbm', "
            "'distributed', 'cryptosweep.sweep.runner') if m in sys.modules]; print(heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "[]"


def test_every_package_entry_point_resolves() -> None:
    import importlib

    for package in ("core", "judging", "records", "execution", "sweep", "reporting",
                    "walkforward"):
        module = importlib.import_module(f"cryptosweep.{package}")
        for name in module.__all__:
            assert getattr(module, name) is not None, (package, name)


def test_notebooks_import_from_package_entry_points_only() -> None:
    """A notebook names ``cryptosweep``, a layer package or one of its modules that is itself a
    public face (``figures``, ``tables``, ``explore``), never an internal module path."""
    import json
    import re
    from pathlib import Path

    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    internal = []
    for path in sorted(notebooks.glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            source = "".join(cell["source"]) if cell["cell_type"] == "code" else ""
            for module in re.findall(r"^\s*(?:from|import)\s+(cryptosweep[\w.]*)", source, re.M):
                if module.count(".") > 1 or module.split(".")[-1] not in (
                        "cryptosweep", "core", "records", "reporting", "walkforward", "logs"):
                    internal.append((path.name, module))
    assert internal == []


#: Lazy exports named like their defining submodule (see the test below).
SHADOWED_BY_SUBMODULE = {("cryptosweep.judging", "verdict"), ("cryptosweep.sweep", "preflight")}


def _export_tables() -> tuple[dict[str, dict[str, str]], list[str]]:
    """Every lazy export table (``_EXPORTS``: name -> defining module, by package) and every
    module that declares ``__all__``, read from the source so a new one is checked too."""
    import ast
    from pathlib import Path

    root = Path(cryptosweep.__file__).resolve().parent
    tables: dict[str, dict[str, str]] = {}
    declaring: list[str] = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if not isinstance(node, ast.Assign | ast.AnnAssign):
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {t.id for t in targets if isinstance(t, ast.Name)}
            if "_EXPORTS" in names and node.value is not None:
                tables[module] = ast.literal_eval(node.value)
            if "__all__" in names:
                declaring.append(module)
    return tables, declaring


def test_every_lazy_export_and_every_all_name_imports() -> None:
    """No string target of a lazy export table can be wrong (``DataUpdateSettings`` was mapped
    to a module that does not define it), and every ``__all__`` name exists."""
    import importlib

    tables, declaring = _export_tables()
    assert {"cryptosweep", "cryptosweep.marketdata", "cryptosweep.core"} <= set(tables)
    assert "cryptosweep.trading" in declaring
    wrong, shadowed = [], set()
    for package, exports in tables.items():
        for name, target in exports.items():
            try:
                defined = getattr(importlib.import_module(target), name)
                if getattr(importlib.import_module(package), name) is not defined:
                    shadowed.add((package, name))
            except (ImportError, AttributeError) as exc:
                wrong.append((package, name, target, repr(exc)))
    # A name that is also its package's submodule: once the submodule is imported, Python binds
    # the package attribute to the module, so ``from package import name`` gives the module.
    # Known, left as it is (renaming is an API change); a new one fails here.
    assert shadowed == SHADOWED_BY_SUBMODULE
    for module_name in declaring:
        module = importlib.import_module(module_name)
        wrong += [(module_name, name) for name in module.__all__ if not hasattr(module, name)]
    assert wrong == []


def test_the_marketdata_package_exports_the_update_settings() -> None:
    import cryptosweep.core.data_settings
    from cryptosweep.marketdata import DataUpdateSettings

    assert DataUpdateSettings is cryptosweep.core.data_settings.DataUpdateSettings


def test_hyperband_runner_uses_the_configs_seed_when_given_none(monkeypatch, tmp_path) -> None:
    """``HyperbandRunner(config=...)`` without ``seed`` runs with the config's ``seed`` (the rule
    of ``run_sweep``), not a fixed default. The real run is opened (seed resolved, run folder
    made), only the search itself is replaced."""
    from pathlib import Path

    import cryptosweep.api
    import cryptosweep.sweep.runner as runner
    from cryptosweep.core.config_files import load_config
    from tests.support import tiny_config

    seeds: list[int] = []

    def record_seed(config: object, seed: int, run_dir: Path, *args: object,
                    **kwargs: object) -> runner.SweepResult:
        seeds.append(seed)
        return runner.SweepResult(run_dir=run_dir, files={}, results={})

    monkeypatch.setattr(runner, "_execute", record_seed)
    monkeypatch.setattr(cryptosweep.api, "cuda_device_count", lambda: 0)
    config = load_config(raw=tiny_config(seed=7, random__n_trials=2))
    HyperbandRunner = cryptosweep.HyperbandRunner  # noqa: N806 - the class under test
    HyperbandRunner(config=config, workers=0, log_dir=tmp_path,
                    show_progress=False).run_hyperband_optimization(1)
    HyperbandRunner(seed=11, config=config, workers=0, log_dir=tmp_path, run_name="explicit",
                    show_progress=False).run_hyperband_optimization(1)
    assert seeds == [7, 11]
