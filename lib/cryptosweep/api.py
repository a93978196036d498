"""The original public API, kept as the first design showed it: ``HyperbandRunner``.

It is a facade over :func:`cryptosweep.sweep.runner.run_sweep` and lives beside it, not among the
search strategies (a strategy never imports the orchestrator)::

    from cryptosweep import HyperbandRunner
    results = HyperbandRunner(seed=123456, enable_gpu=True).run_hyperband_optimization(10)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from cryptosweep.core.config import SweepConfig
from cryptosweep.core.config_files import load_config
from cryptosweep.core.errors import ConfigError
from cryptosweep.core.paths import SWEEP_LOG_DIR, TEMPLATE_CONFIG
from cryptosweep.core.vocabulary import MULTI_FIDELITY_DEFAULT
from cryptosweep.execution.executors import cuda_device_count
from cryptosweep.sweep.runner import run_sweep

log = logging.getLogger(__name__)


class HyperbandRunner:
    """A Hyperband sweep with the original constructor::

        runner = HyperbandRunner(seed=123456, enable_gpu=True)
        results = runner.run_hyperband_optimization(n_iterations=10)

    ``seed`` is the master seed; ``None`` (the default) applies the rule of ``run_sweep``:
    the config's ``seed``, else :data:`~cryptosweep.core.config.DEFAULT_SEED`.
    ``config`` is a :class:`~cryptosweep.core.config.SweepConfig`, a path to a config file, or
    ``None`` for the repository's ``parameters/sweep_config_template.json``. With
    ``enable_gpu`` the sweep uses every visible CUDA GPU, and falls back to CPU (with a log line)
    when there is none. Other keyword arguments go to ``run_sweep`` unchanged (``workers``,
    ``run_name``, ``show_progress``, ``gpu_ids``, ...).

    Worker processes start by re-importing the main module, so in a plain script the call must
    sit under ``if __name__ == "__main__":`` (or pass ``workers=0`` to run in-process); an
    unguarded script gets one clear error instead of a hang.
    """

    def __init__(
        self, seed: int | None = None, enable_gpu: bool = True,
        config: SweepConfig | str | Path | None = None, log_dir: str | Path = SWEEP_LOG_DIR,
        **run_sweep_kwargs: Any,
    ) -> None:
        self.seed, self.enable_gpu, self.config = seed, enable_gpu, config
        self.log_dir, self.run_sweep_kwargs = log_dir, run_sweep_kwargs

    def _load_config(self) -> SweepConfig:
        if isinstance(self.config, SweepConfig):
            return self.config
        if self.config is not None:
            return load_config(self.config)
        template = TEMPLATE_CONFIG
        if not template.is_file():
            raise ConfigError(
                f"HyperbandRunner: no config given and the template {template} was not found "
                "(an installed package has no parameters/ folder); pass config=PATH"
            )
        return load_config(template)

    def _gpu_ids(self) -> list[int] | None:
        if not self.enable_gpu:
            return None
        count = cuda_device_count()
        if count == 0:
            log.info("enable_gpu=True but no CUDA GPU is usable: falling back to CPU")
            return None
        return list(range(count))

    def run_hyperband_optimization(self, n_iterations: int = 10) -> dict[str, Any]:
        """Run a Hyperband sweep of ``n_iterations`` passes over all brackets.

        Returns ``{"best", "trials", "brackets", "run_dir"}``: the best configuration (as in the
        results file), every evaluation, the strategy's bracket summary, and the run folder.
        """
        if isinstance(n_iterations, bool) or not isinstance(n_iterations, int) \
                or n_iterations < 1:
            raise ConfigError(f"n_iterations must be an int >= 1, got {n_iterations!r}")
        base = self._load_config()
        config = base.model_copy(update={
            "sweep_type": "hyperband",
            "hyperband": base.hyperband.model_copy(update={"iterations": n_iterations}),
        })
        if base.sweep_type != "hyperband" and "fidelity" not in base.objective.model_fields_set:
            # Hyperband's default fidelity, as the loader gives a Hyperband config naming none
            config = config.model_copy(update={"objective": base.objective.model_copy(
                update={"fidelity": MULTI_FIDELITY_DEFAULT})})
        kwargs = dict(self.run_sweep_kwargs)
        if "gpu_ids" not in kwargs:
            kwargs["gpu_ids"] = self._gpu_ids()
        result = run_sweep(config=config, seed=self.seed, log_dir=self.log_dir, **kwargs)
        return {
            "best": result.results.get("best"),
            "trials": result.results.get("evaluations", []),
            "brackets": result.results.get("strategy"),
            "run_dir": str(result.run_dir),
        }
