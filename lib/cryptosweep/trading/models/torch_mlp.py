"""PyTorch MLP entry model, seeded generators only, with bitwise continuation."""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cryptosweep.core.errors import ConfigError
from cryptosweep.core.reproducibility import CUBLAS_WORKSPACE, ReproducibilityManager, derive_seed
from cryptosweep.trading.models import devices
from cryptosweep.trading.models.adapter import _Adapter, _log_once
from cryptosweep.trading.models.continuation import _Checkpoint
from cryptosweep.trading.models.params import TORCH_DEFAULTS, _reject_reserved

#: Serialises torch training/prediction within a process (see TorchMLPEntryModel._session).
_TORCH_SESSION = threading.RLock()


class TorchMLPEntryModel(_Adapter):
    """A multilayer perceptron in PyTorch: ``layers`` hidden ReLU layers of ``hidden_units``
    with dropout, trained with AdamW (Loshchilov & Hutter 2019) on BCE-with-logits for
    ``budget`` epochs of shuffled mini-batches. Parameters: :data:`TORCH_DEFAULTS`.
    """

    family = "torch"
    library = "torch"

    def __init__(self, params: dict[str, Any], repro: ReproducibilityManager) -> None:
        _reject_reserved(self.family, params)
        unknown = sorted(set(params) - set(TORCH_DEFAULTS))
        if unknown:
            raise ConfigError(
                f"torch entry_model parameters do not include {', '.join(unknown)} (accepted: "
                f"{', '.join(TORCH_DEFAULTS)})"
            )
        merged = {**TORCH_DEFAULTS, **params}
        self.params = {
            "hidden_units": _int_param(merged, "hidden_units", 1),
            "layers": _int_param(merged, "layers", 1),
            "dropout": _float_param(merged, "dropout", 0.0, 1.0, high_open=True),
            "learning_rate": _float_param(merged, "learning_rate", 0.0, math.inf, low_open=True),
            "weight_decay": _float_param(merged, "weight_decay", 0.0, math.inf),
            "batch_size": _int_param(merged, "batch_size", 1),
        }
        settings = repro.get_torch_settings()
        self.seed = int(settings["seed"])
        self.threads = int(settings["num_threads"])
        self._deterministic_algorithms = bool(settings["use_deterministic_algorithms"])
        self.memory_fraction = float(settings["memory_fraction"])
        self.device = "cpu"
        if repro.on_gpu:
            if devices.torch_cuda_available():
                self.device = f"cuda:{repro.gpu_index}"
            else:
                _log_once("torch-cuda", "torch sees no CUDA device; torch trials run on CPU")
        self.deterministic = self._deterministic_algorithms
        self._net: Any = None
        self._optimiser: Any = None
        self._generators: tuple[Any, Any] = (None, None)
        self._mean: np.ndarray | None = None
        self._scale: np.ndarray | None = None

    @contextlib.contextmanager
    def _session(self) -> Iterator[Any]:
        """Fixed threads and deterministic algorithms, restored afterwards. These switches are
        process-wide, so torch trials in one process (``gpu_settings.trials_per_gpu`` > 1 runs
        several in one worker's threads) take turns: one holds :data:`_TORCH_SESSION` at a
        time, and no trial can restore the switches under another's feet."""
        with _TORCH_SESSION, self._switches() as torch:
            yield torch

    @contextlib.contextmanager
    def _switches(self) -> Iterator[Any]:
        import torch

        threads = torch.get_num_threads()
        deterministic = torch.are_deterministic_algorithms_enabled()
        warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
        if self._deterministic_algorithms and self.device.startswith("cuda"):
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        torch.set_num_threads(self.threads)
        if self.device.startswith("cuda"):  # a cap for the whole process: its GPU's share
            torch.cuda.set_per_process_memory_fraction(self.memory_fraction, self.device)
        if self._deterministic_algorithms:
            torch.use_deterministic_algorithms(True)
        try:
            yield torch
        finally:
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)

    def _fit(self, x: np.ndarray, y: np.ndarray, budget: int) -> None:
        self._train(x, y, budget, None, 0)

    def _continue(self, x: np.ndarray, y: np.ndarray, budget: int, checkpoint: _Checkpoint
                  ) -> bool:  # fmt: skip
        with np.load(checkpoint.path, allow_pickle=False) as archive:
            state = {name: archive[name] for name in archive.files}
        self._train(x, y, budget, state, checkpoint.budget)
        return True

    def _load(self, checkpoint: _Checkpoint) -> None:
        """The network, AdamW state, generators and standardisation of a checkpoint, as
        :meth:`_train` restores them, without training (so a loaded model saves again)."""
        with np.load(checkpoint.path, allow_pickle=False) as archive:
            state = {name: archive[name] for name in archive.files}
        self._mean, self._scale = state["standardise:mean"], state["standardise:scale"]
        p = self.params
        with self._session() as torch:
            init = torch.Generator().manual_seed(self.seed)
            masks = torch.Generator(device=self.device).manual_seed(
                derive_seed(self.seed, "torch", "dropout")
            )
            net = _mlp(torch, len(self._mean), p["hidden_units"], p["layers"], p["dropout"],
                       init, masks).to(self.device)  # fmt: skip
            optimiser = torch.optim.AdamW(
                net.parameters(), lr=p["learning_rate"], weight_decay=p["weight_decay"]
            )
            _restore_torch(torch, state, net, optimiser, init, masks)
            net.eval()
        self._net, self._optimiser, self._generators = net, optimiser, (init, masks)

    def _train(self, x: np.ndarray, y: np.ndarray, budget: int,
               state: dict[str, np.ndarray] | None, done: int) -> None:  # fmt: skip
        """Epochs ``done + 1 .. budget``; ``state`` (from a checkpoint after ``done`` epochs)
        restores the weights, AdamW's moments and steps, both generators and the
        standardisation, so the result is that of training ``budget`` epochs in one go."""
        if state is None:
            self._mean = x.mean(axis=0)
            scale = x.std(axis=0)
            self._scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        else:
            self._mean, self._scale = state["standardise:mean"], state["standardise:scale"]
        p = self.params
        with self._session() as torch:
            init = torch.Generator().manual_seed(self.seed)  # weights and shuffling
            masks = torch.Generator(device=self.device).manual_seed(
                derive_seed(self.seed, "torch", "dropout")
            )
            net = _mlp(torch, x.shape[1], p["hidden_units"], p["layers"], p["dropout"], init,
                       masks).to(self.device)  # fmt: skip
            optimiser = torch.optim.AdamW(
                net.parameters(), lr=p["learning_rate"], weight_decay=p["weight_decay"]
            )
            if state is not None:
                _restore_torch(torch, state, net, optimiser, init, masks)
            inputs = torch.as_tensor(self._standardise(x), device=self.device)
            targets = torch.as_tensor(y.astype("float32"), device=self.device)
            weights = (None if self._weight is None else
                       torch.as_tensor(self._weight.astype("float32"), device=self.device))
            loss_fn = torch.nn.BCEWithLogitsLoss(reduction="mean" if weights is None else "none")
            net.train()
            for _ in range(done, budget):
                order = torch.randperm(len(x), generator=init).to(self.device)
                for start in range(0, len(x), p["batch_size"]):
                    batch = order[start : start + p["batch_size"]]
                    optimiser.zero_grad(set_to_none=True)
                    loss = loss_fn(net(inputs[batch]).squeeze(1), targets[batch])
                    if weights is not None:  # the weighted mean of the batch's losses
                        loss = (loss * weights[batch]).sum() / weights[batch].sum().clamp_min(
                            1e-12)
                    loss.backward()
                    optimiser.step()
            net.eval()
        self._net, self._optimiser, self._generators = net, optimiser, (init, masks)

    def _checkpoint_files(self, path: Path) -> dict[str, tuple[Path, Callable[[Path], None]]]:
        arrays = {
            "standardise:mean": np.asarray(self._mean, dtype="float64"),
            "standardise:scale": np.asarray(self._scale, dtype="float64"),
            "rng:init": self._generators[0].get_state().numpy().copy(),
            "rng:masks": self._generators[1].get_state().cpu().numpy().copy(),
        }
        for name, tensor in self._net.state_dict().items():
            arrays[f"net:{name}"] = tensor.detach().cpu().numpy().copy()
        for index, moments in self._optimiser.state_dict()["state"].items():
            for key, tensor in moments.items():
                arrays[f"adamw:{index}:{key}"] = tensor.detach().cpu().numpy().copy()

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.savez(handle, allow_pickle=False, **arrays)

        return {"model": (path, write)}

    def _identity(self) -> dict[str, Any]:
        return {**super()._identity(), "__seed__": self.seed, "__threads__": self.threads,
                "__deterministic__": self._deterministic_algorithms}  # fmt: skip

    def _predict(self, x: np.ndarray) -> np.ndarray:
        """The trained network evaluated row by row in a fixed order of summation, so that a
        bar's probability does not depend on which other bars are predicted with it.

        A BLAS matrix product picks its kernel, and with it the order in which it sums, by the
        shape of the matrices: measured on this project's CPU build, one row's torch output
        changed in the last bits with the number of rows around it (batch sizes 1-3, 127, 129,
        255, 257, ...), so the decisions on a holdout would differ from those on the same bars
        inside a longer series. Here each layer is ``b + sum_k z[:, k] * W[:, k]`` accumulated
        over ``k`` in order, in float64 from the float32 weights (ReLU between layers, dropout
        off, then the logistic function): the same bits for a row whatever else is predicted,
        on any machine with IEEE arithmetic.
        """
        z = self._standardise(x).astype("float64")
        for kind, weight, bias in self._inference_layers():
            if kind == "linear":
                out = np.empty((len(z), len(bias)))
                out[:] = bias
                for k in range(weight.shape[1]):
                    out += z[:, k : k + 1] * weight[:, k]
                z = out
            elif kind == "relu":
                z = np.maximum(z, 0.0)
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-z[:, 0]))

    def _inference_layers(self) -> list[tuple[str, np.ndarray | None, np.ndarray | None]]:
        """``(kind, weight, bias)`` per module of the network, in order: ``linear`` layers with
        float64 copies of their parameters, ``relu``, and ``identity`` (dropout, off when
        predicting)."""
        import torch

        layers: list[tuple[str, np.ndarray | None, np.ndarray | None]] = []
        for module in self._net:
            if isinstance(module, torch.nn.Linear):
                weight = module.weight.detach().cpu().numpy().astype("float64")
                bias = module.bias.detach().cpu().numpy().astype("float64")
                layers.append(("linear", weight, bias))
            elif isinstance(module, torch.nn.ReLU):
                layers.append(("relu", None, None))
            else:
                layers.append(("identity", None, None))
        return layers

    def _standardise(self, x: np.ndarray) -> np.ndarray:
        return ((x - self._mean) / self._scale).astype("float32")


def _restore_torch(torch: Any, state: dict[str, np.ndarray], net: Any, optimiser: Any,
                   init: Any, masks: Any) -> None:  # fmt: skip
    """Load a checkpoint's weights, AdamW state and generator states (see ``_train``)."""
    net.load_state_dict(
        {name[4:]: torch.as_tensor(value) for name, value in state.items()
         if name.startswith("net:")}, strict=True,
    )  # fmt: skip
    moments: dict[int, dict[str, Any]] = {}
    for name, value in state.items():
        if name.startswith("adamw:"):
            _, index, key = name.split(":")
            moments.setdefault(int(index), {})[key] = torch.as_tensor(value)
    groups = optimiser.state_dict()["param_groups"]
    optimiser.load_state_dict({"state": moments, "param_groups": groups})
    init.set_state(torch.as_tensor(state["rng:init"]))
    masks.set_state(torch.as_tensor(state["rng:masks"]))


def _mlp(torch: Any, inputs: int, hidden: int, layers: int, dropout: float, init: Any,
         masks: Any) -> Any:  # fmt: skip
    """The network, initialised like ``torch.nn.Linear`` but from ``init``, not the global RNG."""
    nn = torch.nn

    class Dropout(nn.Module):
        def forward(self, z: Any) -> Any:
            if not self.training or dropout == 0.0:
                return z
            keep = torch.empty_like(z).bernoulli_(1.0 - dropout, generator=masks)
            return z * keep / (1.0 - dropout)

    modules: list[Any] = []
    width = inputs
    for _ in range(layers):
        modules += [_linear(torch, width, hidden, init), nn.ReLU(), Dropout()]
        width = hidden
    modules.append(_linear(torch, width, 1, init))
    return nn.Sequential(*modules)


def _linear(torch: Any, fan_in: int, fan_out: int, init: Any) -> Any:
    layer = torch.nn.utils.skip_init(torch.nn.Linear, fan_in, fan_out)  # no global RNG draw
    with torch.no_grad():
        torch.nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=init)
        bound = 1.0 / math.sqrt(fan_in)
        torch.nn.init.uniform_(layer.bias, -bound, bound, generator=init)
    return layer


def _int_param(params: dict[str, Any], name: str, low: int) -> int:
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating) \
            or not float(value).is_integer() or value < low:  # fmt: skip
        raise ConfigError(f"torch entry_model.{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _float_param(
    params: dict[str, Any], name: str, low: float, high: float, *, low_open: bool = False,
    high_open: bool = False,
) -> float:  # fmt: skip
    value = params[name]
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high
        )
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ConfigError(f"torch entry_model.{name} must be a number in {interval}, got {value!r}")
    return value
