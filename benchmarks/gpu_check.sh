#!/usr/bin/env bash
# The GPU check in one call (docs/gpu-checks.md): the CUDA recording path and the GPU benchmark rows.
#
#   bash benchmarks/gpu_check.sh [--device cuda|cpu] [--quick] [--out DIR] [--budget SECONDS] [--parts LIST]
#
# Parts, in order, each under `timeout` and within the whole budget (default 480 s), each timed:
#   env     what the machine has; stops the check when a needed package is missing or CUDA is not seen
#   tests   tests/e2e/test_gpu.py: recorded steps never sync the device; CUDA counts equal numpy's recount
#   record  python -m shedding.cli.main record on the bundled digits (bf16 autocast on CUDA), packed to run.tar.gz
#   verify  python -m benchmarks.gpu_check verify run.tar.gz: complete, counts equal numpy's recount, loss finite
#   bench   benchmarks/recording_overhead.py: the target rows, each against the loop without recording
#   report  the target rows against their targets
# --quick: the same parts on stand-in sizes (a dry run, on a CPU in well under two minutes).
# Writes under --out, else $OUT (the device machine's): env.txt pytest.log record.log run.tar.gz bench.txt
# bench.json summary.txt (seven files, one folder: what the device machine sends back). Python is $PYTHON,
# else python3; the repository goes first on PYTHONPATH. Installs nothing: carried wheels are installed by the
# command line that calls this (docs/gpu-checks.md). Exit status: 0 when every part that ran passed.
set -euo pipefail

device=cuda
quick=0
out=""
budget=480
parts="env,tests,record,verify,bench,report"

usage() { sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "error: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --device) [ $# -ge 2 ] || die "--device needs a value"; device="$2"; shift 2 ;;
        --quick) quick=1; shift ;;
        --out) [ $# -ge 2 ] || die "--out needs a folder"; out="$2"; shift 2 ;;
        --budget) [ $# -ge 2 ] || die "--budget needs seconds"; budget="$2"; shift 2 ;;
        --parts) [ $# -ge 2 ] || die "--parts needs a list"; parts="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
case "$device" in cpu|cuda|cuda:[0-9]*) ;; *) die "--device must be cpu or cuda, not '$device'" ;; esac
[[ "$budget" =~ ^[0-9]+$ ]] || die "--budget must be whole seconds, not '$budget'"
for p in ${parts//,/ }; do
    case "$p" in env|tests|record|verify|bench|report) ;; *) die "--parts: unknown part '$p'" ;; esac
done

out="${out:-${OUT:-}}"
[ -n "$out" ] || die "no output folder: give --out DIR (on the device machine \$OUT is used)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
python="${PYTHON:-python3}"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
work="$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")"
trap 'rm -rf "$work"' EXIT

kind="${device%%:*}"
if [ "$quick" = 1 ]; then  # stand-in sizes: small_cnn for both models, few steps, one repeat
    bench_args=(--model small_cnn --shape "1,8,8" --batch 8 --steps 100 --repeats 1)
else
    bench_args=(--repeats 3)
fi
if [ "$kind" = cpu ]; then  # a dry run: one thread, or a shared CPU stalls OpenMP's two at their barriers
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
fi
mixed=()
[ "$kind" = cuda ] && mixed=(--train-mixed-precision)

t_start=$(date +%s.%N)
summary=()
failed=0

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
wanted() { [[ ",$parts," == *",$1,"* ]]; }

# run_part NAME LIMIT LOG CMD...: CMD under `timeout`, at most LIMIT seconds and what is left of the budget,
# its output shown and appended to $out/LOG; records the part's status and time.
run_part() {
    local name="$1" limit="$2" log="$out/$3"
    shift 3
    local left
    left=$(awk -v s="$t_start" -v b="$budget" -v now="$(date +%s.%N)" 'BEGIN { printf "%d", b - (now - s) }')
    [ "$left" -lt "$limit" ] && limit="$left"
    if [ "$limit" -lt 5 ]; then
        summary+=("$(printf '%-8s %-26s %7s s' "$name" "skipped: budget spent" "0.0")")
        failed=1
        echo "== $name: skipped, the budget of $budget s is spent"
        return 1
    fi
    echo "== $name (at most $limit s): $*" | tee -a "$log"
    local t0 rc status
    t0=$(date +%s.%N)
    set +e
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$log"
    rc=${PIPESTATUS[0]}
    set -e
    case "$rc" in
        0) status="ok" ;;
        124|137) status="TIMED OUT after $limit s" ;;
        *) status="FAILED (exit $rc)" ;;
    esac
    [ "$rc" = 0 ] || failed=1
    local took
    took=$(elapsed "$t0")
    summary+=("$(printf '%-8s %-26s %7s s' "$name" "$status" "$took")")
    echo "== $name: $status in $took s" | tee -a "$log"
    return "$rc"
}

echo "gpu check: device $device, quick $quick, budget $budget s, parts $parts, output $out"

if wanted env; then
    if command -v nvidia-smi >/dev/null 2>&1; then  # read-only queries: the card's settings are left alone
        nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.sm,clocks.mem,temperature.gpu \
            --format=csv >>"$out/env.txt" 2>&1 || true
    fi
    if ! run_part env 90 env.txt "$python" -m benchmarks.gpu_check env --device "$device"; then
        echo "error: the machine lacks what the check needs (see env.txt): the other parts are not run"
        printf '%s\n' "${summary[@]}" | tee "$out/summary.txt"
        exit 1
    fi
fi

if wanted tests; then
    run_part tests 150 pytest.log "$python" -m pytest -q -rs -p no:cacheprovider tests/e2e/test_gpu.py || true
fi

if wanted record; then
    if run_part record 120 record.log "$python" -m shedding.cli.main record --device "$device" --out "$work/run.zarr" \
        --cache "$work/cache" --train-duration 3ep --train-milestones 2ep --train-weight-decay 5e-3 \
        --retrain-duration 2ep --prune-method gmp --prune-sparsity 0.5 --record-every 1 --record-hist-every 1 \
        --record-dtype float32 --record-chunk-steps 8 "${mixed[@]}"; then
        tar -czf "$out/run.tar.gz" -C "$work" run.zarr
    fi
fi

if wanted verify; then
    if [ -f "$out/run.tar.gz" ]; then
        run_part verify 60 record.log "$python" -m benchmarks.gpu_check verify "$out/run.tar.gz" \
            --device "$kind" || true
    else
        summary+=("$(printf '%-8s %-26s %7s s' verify "skipped: no run.tar.gz" "0.0")")
        failed=1
    fi
fi

if wanted bench; then
    variants=()
    while IFS= read -r v; do variants+=("$v"); done < <("$python" -c \
        'from benchmarks.gpu_check import TARGET_VARIANTS as v; print("\n".join(v))')
    run_part bench 300 bench.txt "$python" -m benchmarks.recording_overhead --device "$device" \
        --cases resnet56 resnet50 --variants "${variants[@]}" --json "$out/bench.json" "${bench_args[@]}" || true
fi

if wanted report; then
    if [ -f "$out/bench.json" ]; then
        run_part report 30 summary.txt "$python" -m benchmarks.gpu_check report "$out/bench.json" || true
    else
        summary+=("$(printf '%-8s %-26s %7s s' report "skipped: no bench.json" "0.0")")
        failed=1
    fi
fi

{
    echo "parts (device $device, quick $quick), $(elapsed "$t_start") s in all:"
    printf '%s\n' "${summary[@]}"
    [ "$failed" = 0 ] && echo "gpu check: every part passed" || echo "gpu check: SOME PARTS FAILED"
} | tee -a "$out/summary.txt"
exit "$failed"
