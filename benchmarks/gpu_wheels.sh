#!/usr/bin/env bash
# Download, into .whl/ (ignored by git), the wheels the GPU machine lacks for
# benchmarks/gpu_check.sh: its image has Python 3.12 with torch, numpy, pandas, scipy, pyarrow,
# psutil, nvidia-ml-py, pyyaml, tqdm, click, cloudpickle, msgpack, toolz, jinja2, but not these.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
pins=$(grep -iE '^(pydantic|pydantic-core|annotated-types|typing-inspection|dask|distributed|dask-cuda|rapids-dask-dependency|partd|locket|zict|tblib|tornado|sortedcontainers|lightgbm|optuna|alembic|sqlalchemy|mako|colorlog|cmaes|cuda-core|cuda-bindings|cuda-pathfinder)==' requirements.lock)
for pin in $pins; do
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform manylinux1_x86_64 --platform any -q -d .whl "$pin"
done
du -sh .whl
