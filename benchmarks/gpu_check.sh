#!/usr/bin/env bash
# The GPU check, for a lent GPU machine (one short run; see benchmarks/RESULTS.md "On a real
# GPU"). Prepare here, once:   bash benchmarks/gpu_wheels.sh      (downloads wheels into .whl/)
# then run there, e.g. with the device tool:  bash benchmarks/gpu_check.sh   (carry: .whl)
# It prints and writes to $OUT: check-gpu, the same torch sweep on the GPU and on the CPUs
# (wall time, trials per hour, GPU utilisation), and a determinism re-run on the GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD/lib"
else
    export PYTHONPATH="$PWD/lib"
fi
export PYTHONUNBUFFERED=1
nvidia-smi -L | tee "$OUT/nvidia-smi.txt"
python3 -m cryptosweep check-gpu | tee "$OUT/check_gpu.txt"
config=benchmarks/gpu_check.yaml
runs="$OUT/runs"
run() {  # name, then flags
    local name=$1; shift
    local start end
    start=$(date +%s.%N)
    python3 -m cryptosweep run --config "$config" --seed 7 --log-dir "$runs" --run-name "$name" \
        --no-progress "$@" > "$OUT/$name.log" 2>&1 || { tail -20 "$OUT/$name.log"; return 1; }
    end=$(date +%s.%N)
    echo "$name: $(python3 -c "print(f'{$end - $start:.1f}')") s"
}
run gpu --gpu-ids 0
run cpu --workers "$(nproc)"
run gpu_again --gpu-ids 0
python3 - "$runs" <<'PY' | tee "$OUT/summary.txt"
import json, sys
from pathlib import Path

runs = Path(sys.argv[1])

def load(name):
    results = json.loads(next((runs / name).glob("sweep_results_*.json")).read_text())
    usage = json.loads(next((runs / name).glob("resource_usage_*.json")).read_text())
    return results, usage

def stable(results):
    results = dict(results)
    results.pop("run")
    results["evaluations"] = [{k: v for k, v in e.items() if k != "timing"}
                              for e in results["evaluations"]]
    return json.dumps(results, sort_keys=True)

for name in ("gpu", "cpu"):
    results, usage = load(name)
    wall = results["run"]["wall_time_s"]
    n = results["counts"]["evaluations"]
    gpu = [s["gpu_percent"] for s in usage["samples"] if s["source"].startswith("gpu")]
    devices = sorted({e["timing"]["device"] for e in results["evaluations"]})
    print(f"{name}: {n} trials in {wall:.1f} s = {3600 * n / wall:.0f} trials/hour on {devices}; "
          f"mean GPU utilisation {sum(gpu) / len(gpu):.0f}%" if gpu else
          f"{name}: {n} trials in {wall:.1f} s = {3600 * n / wall:.0f} trials/hour on {devices}")
first, _ = load("gpu")
again, _ = load("gpu_again")
print("determinism, GPU re-run with the same seed:",
      "identical" if stable(first) == stable(again) else "DIFFERENT")
print("reproducibility checks:", [c["status"] for c in first["reproducibility_check"]])
PY
