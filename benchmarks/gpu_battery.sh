#!/usr/bin/env bash
# The efficiency and live issues' GPU measurements, in parts that each fit one 600-s device call.
#
#   bash benchmarks/gpu_battery.sh tests profile           # project root on the GPU machine, .whl/ carried
#   bash benchmarks/gpu_battery.sh anchor                  # .anchor/ carried too (../shared/anchor/README.md)
#   GRAPHS=True bash benchmarks/gpu_battery.sh convergence # then, on the same warm machine, ours on that folder
#   bash benchmarks/gpu_battery.sh render live speed
#
# Parts: tests (CUDA paths), profile (step profile, eager and graph_networks), speed (train_speed.py),
# anchor (ER-NeRF's own code, 240 s, German_20s from .anchor/pack), convergence (ours on that folder, scored
# at 60 s and 240 s of one training), render (render_fps.py), live (live_latency.py, 60 s of speech).
# Each part's whole output goes to $OUT/PART.log (OUT: the device's return folder, else /tmp/gpu_battery);
# its result lines and time print here. A part that overruns its limit is cut and the next one runs.
# GRAPHS=True|False overrides graph_networks in convergence and speed (default: the method's).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/gpu_battery}
mkdir -p "$out"
if ! python -c "import ernerf_ns" 2>/dev/null; then
  bash .whl/install.sh >/dev/null 2>&1 || { echo "gpu_battery: .whl/install.sh failed (was .whl/ carried?)"; exit 1; }
fi
export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1
graphs=()
[ -n "${GRAPHS:-}" ] && graphs=(--graph-networks "$GRAPHS")
echo "gpu_battery: $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || echo 'no GPU'), parts: $*"

german() {  # German_20s in ER-NeRF's layout at /tmp/d/data, unpacked as .anchor/run.sh does
  [ -d /tmp/d/data/gt_imgs ] && return 0
  mkdir -p /tmp/d && rm -rf /tmp/d/data && cp -r .anchor/pack /tmp/d/data && python3 .anchor/unpack.py /tmp/d/data
}

part() {  # part NAME LIMIT_S RESULT_PATTERN COMMAND...
  local name=$1 limit=$2 pattern=$3 start rc
  shift 3
  start=$(date +%s)
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  rc=$?
  echo "== $name: rc $rc in $(($(date +%s) - start)) s$([ $rc -eq 124 ] && echo " (cut at ${limit} s)")"
  grep -E "$pattern" "$out/$name.log" | cut -c1-1500 || tail -5 "$out/$name.log"
}

for name in "$@"; do
  case $name in
    tests) part tests 280 "passed|failed|error|SKIPPED" python -m pytest -q -rs tests/test_cuda_paths.py tests/test_row_buckets.py ;;
    profile)
      part profile_eager 200 "^profile_step: " python benchmarks/profile_step.py --warmup-steps 150 --steps 40
      part profile_graphs 200 "^profile_step: " python benchmarks/profile_step.py --warmup-steps 150 --steps 40 --graph-networks ;;
    speed) part speed 560 "^train_speed" python benchmarks/train_speed.py --steps 1500 --warmup-steps 200 "${graphs[@]}" ;;
    anchor) part anchor 590 "^ER-NeRF" bash .anchor/run.sh 240 ;;
    convergence) german && part convergence 330 "^convergence" python benchmarks/convergence.py --data /tmp/d/data --seconds 60 240 "${graphs[@]}" ;;
    render) part render 300 "^render_fps" python benchmarks/render_fps.py --size 512 --method ernerf --train-steps 500 ;;
    live) part live 300 "^live_latency" python benchmarks/live_latency.py --method ernerf --size 512 --train-steps 500 --seconds 60 ;;
    *) echo "gpu_battery: unknown part '$name' (tests profile speed anchor convergence render live)"; exit 2 ;;
  esac
done
