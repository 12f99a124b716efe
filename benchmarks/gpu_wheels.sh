#!/usr/bin/env bash
# Download the wheels benchmarks/gpu_check.sh needs on the GPU machine into .whl/ (git-ignored), for its
# Python 3.12 on x86-64 Linux. That machine has torch, torchvision, numpy, scipy, pandas, xarray, scikit-learn,
# pytest, pyyaml, fsspec, cloudpickle, toolz, click, packaging, markdown-it-py and pygments, but no registry:
# what the exercised paths import (python -m shedding.cli.main record, tests/e2e/test_gpu.py,
# benchmarks/recording_overhead.py) and it lacks travels as these wheels, at the versions of .venv here.
# --no-deps fetches none of a package's needs, so the list names every missing one; typer, rich and
# typing-extensions are there too but are carried so the CLI runs on the same versions as here (this typer
# imports pydantic, which is not there).
#
# Usage: bash benchmarks/gpu_wheels.sh            (replaces .whl/*.whl; prints the total size)
# Then name ".whl" in the device call's carry and start its command with the install line of docs/gpu-checks.md.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$repo/.whl"
python="${PYTHON:-python3}"

wheels=(
    zarr==3.1.6                 # the store format
    numcodecs==0.16.6           # zarr's codecs (compiled)
    google-crc32c==1.9.0        # zarr's crc32c checksums (compiled)
    donfig==0.8.1.post1         # zarr's configuration
    dask==2026.8.0              # analysis/ (imported by the CLI) uses dask.array
    partd==1.4.2                # dask's declared needs
    locket==1.0.0
    typer==0.29.2               # the CLI, as here
    pydantic==2.14.4            # typer 0.29 imports it
    pydantic-core==2.50.5       # (compiled)
    annotated-types==0.8.0
    typing-inspection==0.4.5
    typing-extensions==4.16.0   # pydantic needs >= 4.16
    rich==15.0.0                # the CLI's output, as here
)

platforms=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64
           manylinux1_x86_64)
platform_args=()
for p in "${platforms[@]}"; do
    platform_args+=(--platform "$p")
done

mkdir -p "$dest"
rm -f "$dest"/*.whl  # one version of each: two stop the whole install there
"$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platform_args[@]}" -d "$dest" "${wheels[@]}"

count=$(find "$dest" -maxdepth 1 -type f -name '*.whl' | wc -l)
if [ "$count" -ne "${#wheels[@]}" ]; then
    echo "error: expected ${#wheels[@]} wheels in $dest, found $count" >&2
    exit 1
fi
ls -1 "$dest"
echo "total: $(du -ch "$dest"/*.whl | tail -n 1 | cut -f1) in $count wheels ($dest)"
