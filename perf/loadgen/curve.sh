#!/usr/bin/env bash
# The scaling curve over worker processes on one many-core host (not a test): for w workers on
# CPUs 0..w-1, concurrency 1024·w and 16−w stub processes on the other CPUs (SO_REUSEPORT), the
# sustained (all parsing counted) and whole-process output tok/s; then the per-core probe
# (cores.py) and, with a second argument, the same w=8 point from another source tree.
#
#   OUT=results perf/loadgen/curve.sh "1 2 4 8 12" [path/to/older/tree]
set -u
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-.}
cpus=$(nproc)
show() { python3 -c "import json,sys; [print(json.dumps({k: r.get(k) for k in sys.argv[2:]})) for r in json.load(open(sys.argv[1]))]" "$@"; }
for w in ${1:-1 2 4 8 12}; do
  timeout 120 python3 "$here/bench.py" --modes ceiling --clients ixci --concurrency $((1024 * w)) \
    --requests-per-slot 8 --repeats 1 --idle-load 99 --idle-wait 0 --ixci-workers "$w" \
    --client-cpu "0-$((w - 1))" --stub-procs $((cpus - w)) --server-cpu "$w-$((cpus - 1))" \
    --json-out "$out/curve-w$w.json" > "$out/curve-w$w.log" 2>&1
  echo "w=$w rc=$?"
  show "$out/curve-w$w.json" out_tok_s sustained_tok_s whole_process_tok_s drain_s wall_s peak_rss_mib
done
python3 "$here/cores.py" --json-out "$out/cores.json"
echo "cores rc=$?"
if [ -n "${2:-}" ]; then
  timeout 120 python3 "$here/bench.py" --modes ceiling --clients ixci@before --ixci-tree "before=$2" \
    --concurrency 8192 --requests-per-slot 8 --repeats 1 --idle-load 99 --idle-wait 0 \
    --ixci-workers 8 --client-cpu 0-7 --stub-procs $((cpus - 8)) --server-cpu "8-$((cpus - 1))" \
    --json-out "$out/before-w8.json" > "$out/before-w8.log" 2>&1
  echo "before w=8 rc=$?"
  show "$out/before-w8.json" out_tok_s sustained_tok_s whole_process_tok_s drain_s wall_s
fi
