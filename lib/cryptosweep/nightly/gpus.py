"""Which GPUs tonight's sweep gets, by ``GPU_POLICY`` (``use``, ``fallback``, ``require``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptosweep.core.errors import EXIT_GPU, EXIT_OK, EXIT_USAGE, UserError
from cryptosweep.execution.executors import parse_gpu_ids

GPU_POLICIES = ("use", "fallback", "require")


@dataclass(frozen=True)
class GpuChoice:
    ids: list[int]  # empty: CPU
    exit_code: int  # 0, or EXIT_GPU / EXIT_USAGE
    message: str


def resolve_gpus(policy: str, requested: str, detected: Sequence[int] | None,
                 why_none: str = "") -> GpuChoice:
    """Which GPUs tonight's sweep gets.

    ``requested`` is ``GPU_IDS`` ("0,1", or empty), ``detected`` the indices NVML sees (None
    when not probed). ``use``: exactly ``GPU_IDS``, not probed (empty: CPU; an absent GPU makes
    the sweep itself exit 3). ``fallback``: the requested GPUs (empty: every GPU seen) that are
    present, else CPU with a log line. ``require``: the requested GPUs (empty: every GPU seen)
    must all be present, else exit 3.
    """
    if policy not in GPU_POLICIES:
        return GpuChoice([], EXIT_USAGE,
                         f"GPU_POLICY={policy!r}: expected one of {', '.join(GPU_POLICIES)}")
    try:
        wanted = parse_gpu_ids(requested or "") or []
    except UserError as exc:
        return GpuChoice([], EXIT_USAGE, f"GPU_IDS: {exc}".replace("--gpu-ids: ", ""))
    listed = ",".join(map(str, wanted))
    if policy == "use":
        if not wanted:
            return GpuChoice([], EXIT_OK, "GPU_POLICY=use, GPU_IDS empty: trials run on CPU")
        return GpuChoice(wanted, EXIT_OK, f"GPU_POLICY=use: GPUs {listed} as given")
    seen = list(detected or [])
    none_seen = f"no GPU found ({why_none})" if why_none else "no GPU found"
    if policy == "require":
        if not seen:
            return GpuChoice([], EXIT_GPU, f"GPU_POLICY=require but {none_seen}")
        missing = [i for i in wanted if i not in seen]
        if missing:
            return GpuChoice([], EXIT_GPU, f"GPU_POLICY=require but GPU(s) "
                             f"{','.join(map(str, missing))} absent (found {_ids(seen)})")
        ids = wanted or seen
        return GpuChoice(ids, EXIT_OK, f"GPU_POLICY=require: GPUs {_ids(ids)}")
    if not seen:
        return GpuChoice([], EXIT_OK, f"GPU_POLICY=fallback: {none_seen}; trials run on CPU")
    ids = [i for i in wanted if i in seen] if wanted else seen
    if not ids:
        return GpuChoice([], EXIT_OK, f"GPU_POLICY=fallback: GPU(s) {listed} absent (found "
                         f"{_ids(seen)}); trials run on CPU")
    missing = [i for i in wanted if i not in seen]
    note = f" (GPU(s) {_ids(missing)} absent)" if missing else ""
    return GpuChoice(ids, EXIT_OK, f"GPU_POLICY=fallback: GPUs {_ids(ids)}{note}")


def _ids(ids: Iterable[int]) -> str:
    return ",".join(map(str, ids)) or "none"


def detect_gpus() -> tuple[list[int], str]:
    """GPU indices NVML sees (what ``cryptosweep check-gpu`` lists), and why none when empty."""
    from cryptosweep.execution.environment import gpu_info

    info = gpu_info()
    return [int(d["index"]) for d in info.get("devices", [])], str(info.get("reason") or "")
