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
