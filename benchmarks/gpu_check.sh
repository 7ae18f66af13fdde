#!/usr/bin/env bash
# One command for a GPU machine: installs the project from local wheels, probes the GPU, runs the whole test
# suite on it (the tests' "cuda" parameters run instead of skipping) and both GPU benchmarks (every norm in
# float32 and in float16, with GB/s; the training steps), and writes one log and one JSON:
#
#     OUT/gpu_check.log    everything every step printed, each line timestamped, each step's command, wall time
#                          and exit status
#     OUT/gpu_check.json   environment (Python, NumPy, CuPy, PyTorch, GPU, driver/CUDA), every step's command,
#                          status and wall time, the pytest counts (from --junitxml) and slowest tests, and the
#                          benchmarks' results (their --json files, also kept in OUT/parts/)
#
# On the GPU machine (one H200, no network, no package index), from the repository root:
#
#     bash benchmarks/gpu_check.sh --out "$OUT"        # default OUT: $OUT if set, else benchmarks/results/gpu_check
#
# Carry the ignored folder wheels/ with the working tree: the wheels the machine lacks (see below). They are
# installed with `pip install --no-index --no-deps wheels/*.whl`, then the project with
# `pip install --no-index --no-deps --no-build-isolation -e .`. Nothing reaches for the network: PIP_NO_INDEX=1
# is exported for the whole run, and wheels/ is put on PIP_FIND_LINKS, so the pip calls two tests make (they
# pip-install the example plugin tinygrad_norm/experiments/bgn_plugin, built in isolation) find their build
# requirements there. The machine has numpy, CuPy (CUDA 13), PyTorch, numba, numba-cuda, pytest, hypothesis and
# mpi4py; wheels/ must add (the project's install_requires is numpy and graphviz; the rest the tests import):
#     graphviz; expecttest; import-linter, grimp, click, rich, markdown-it-py, mdurl; scikit-learn, scipy, joblib,
#     threadpoolctl, narwhals (and cloudpickle, if that joblib lists it); matplotlib, contourpy, cycler, fonttools,
#     kiwisolver, pillow, pyparsing, python-dateutil (and tzdata or six, as that dateutil asks); and for the
#     isolated plugin build: setuptools (>=64), wheel, packaging (wheel needs it inside the build environment);
#     optionally mpich, an MPI runtime for mpi4py if the machine has none (test_distributed.py skips without).
# A pip that refuses the system Python (PEP 668) obeys PIP_BREAK_SYSTEM_PACKAGES=1 or PIP_USER=1 set by the caller.
#
# The budget: the whole run in 8 minutes on one H200 with 16 cores. Each step has its own `timeout` (a step
# that overruns is killed, recorded with status 124, and the run goes on; the tests get SIGINT, so pytest still
# writes its summary and XML, and the counts so far are kept). Per step, with what it is expected to take:
#     install              30 s   a dozen local wheels and the editable install (7 s here for five wheels)
#     probe                25 s   versions, CuPy's first CUDA context, one NVRTC compile (4 s here, no GPU)
#     tests               265 s   the whole suite but tests/test_gpu_check.py, in one process (pytest-xdist is
#                                 not on the machine): 4 min 7 s on this project's 2-core CPU machines, where
#                                 its 448 cuda tests skip; on the GPU machine expect 3.5-5 min (faster cores, and
#                                 16 of them for the demo's and MPI's subprocesses; the cuda halves, small
#                                 launch-bound arrays plus CuPy's first NVRTC compiles, add 1-2 min). The step at
#                                 risk: --durations=30 puts the slowest tests in the log (and the JSON) to trim by.
#     bench_norms_float32  60 s   every case (6 of them large, 0.2-0.4 GB), fwd and fwd+bwd, ours and PyTorch's,
#     bench_norms_float16  60 s   --repeat 10, not the default 15; but timing is the small part: making the large
#                                 inputs on the host with NumPy takes ~25-30 s a run (half of it making the same
#                                 arrays twice, once for ours and once for PyTorch), then the |ours - torch| check
#     bench_training       35 s   4 models, one training step each, --repeat 10 (default 15)
#     bench_double_backward 30 s  WGAN-GP critic steps (4 norms) and an MLP+BN Hessian-vector product, --repeat 10
#     (report          1-5 s)     505 s of timeouts in all, under 8.5 min
# Rerun one part with --only, e.g. `--only probe,bench_norms_float16`.
#
# --smoke (what CI runs, tests/test_gpu_check.py): the same steps and the same log and JSON, on the CPU, in well
# under a minute: no pip calls (--no-install: the install step only checks that the project imports, from this
# checkout), the probe with CuPy optional (it reports CuPy importable but no GPU), a small pytest selection
# (test_gpu.py and one float16 kernels test, whose cuda halves skip here) instead of the whole suite, and the
# benchmarks with --device cpu --smoke --repeat 1, cut to LayerNorm's and RMSNorm's large cases at batch 2 and the MLP step).
# A benchmark step fails when the benchmark exits non-zero, writes no rows, or has a row where ours failed
# (gpu_check_report.py rows; rows where only PyTorch failed, e.g. its float16 LocalResponseNorm on the CPU, are
# listed in the log but pass).
#
# Usage: benchmarks/gpu_check.sh [--smoke] [--no-install] [--out DIR] [--only STEP,STEP] [--tests 'PYTEST ARGS']
#   --tests ARGS   what pytest runs instead of the whole suite (smoke: the small selection); word-split, e.g.
#                  --tests 'tests/test_gpu.py -k norms'. A path that does not exist makes the tests step fail
#                  (tests/test_gpu_check.py uses that to see a failure recorded).
#   PYTHON=...     the interpreter (default: python on PATH, else python3)
# Exit status: 0 when every step exited 0, else 1 (each step's own status is in the log and the JSON); 2 for a
# usage error.
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STEPS="install probe tests bench_norms_float32 bench_norms_float16 bench_training bench_double_backward"

SMOKE=0
INSTALL=1
OUT_DIR=${OUT:-$ROOT/benchmarks/results/gpu_check}
ONLY=""
TESTS=""
usage() { sed -n 's/^# Usage: /usage: /p' "$0" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) SMOKE=1; INSTALL=0 ;;
        --no-install) INSTALL=0 ;;
        --out) [ $# -ge 2 ] || usage; OUT_DIR=$2; shift ;;
        --out=*) OUT_DIR=${1#--out=} ;;
        --only) [ $# -ge 2 ] || usage; ONLY=$2; shift ;;
        --only=*) ONLY=${1#--only=} ;;
        --tests) [ $# -ge 2 ] || usage; TESTS=$2; shift ;;
        --tests=*) TESTS=${1#--tests=} ;;
        -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument $1" >&2; usage ;;
    esac
    shift
done
for tool in timeout date; do
    command -v "$tool" >/dev/null || { echo "gpu_check.sh: needs \`$tool\` (coreutils)" >&2; exit 2; }
done
PY=${PYTHON:-$(command -v python || command -v python3)}
[ -n "$PY" ] || { echo "gpu_check.sh: no python on PATH (set PYTHON=...)" >&2; exit 2; }
case $PY in */*) PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY") ;; esac  # the steps run in the repository root

for name in ${ONLY//,/ }; do
    [[ " $STEPS " == *" $name "* ]] || { echo "gpu_check.sh: --only: no step $name (steps: $STEPS)" >&2; exit 2; }
done
mkdir -p "$OUT_DIR" || exit 2
OUT_DIR=$(cd "$OUT_DIR" && pwd)  # a relative --out is relative to where the script was started
cd "$ROOT" || exit 2
PARTS=$OUT_DIR/parts
LOG=$OUT_DIR/gpu_check.log
JSON=$OUT_DIR/gpu_check.json
rm -rf "$PARTS" && mkdir -p "$PARTS" || exit 2
rm -f "$LOG" "$JSON"
: > "$PARTS/steps.tsv"

# never the network: no index for any pip in the run (ours, and the two tests' installs of bgn_plugin), and
# the local wheels as the place to find packages
export PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
if [ -d "$ROOT/wheels" ]; then
    export PIP_FIND_LINKS="$ROOT/wheels${PIP_FIND_LINKS:+ $PIP_FIND_LINKS}"
fi

stamp() {  # prefix every line with the time of day (a last line without a newline included)
    local line
    while IFS= read -r line || [ -n "$line" ]; do printf '%(%H:%M:%S)T %s\n' -1 "$line"; done
}
log() { printf '%(%Y-%m-%dT%H:%M:%S%z)T %s\n' -1 "$*" | tee -a "$LOG"; }
ms_now() { date +%s%3N; }

FAILED=()
# run_step NAME TIMEOUT_S CHECK_JSON COMMAND...: the command under `timeout`, its output timestamped into the log
# and into PARTS/NAME.out; CHECK_JSON (or -) is a benchmark's JSON whose rows are checked after it exits 0.
run_step() {
    local name=$1 limit=$2 check=$3
    shift 3
    if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$name,"* ]]; then
        return 0
    fi
    local cmd started t0 status wall
    cmd=$(printf '%q ' "$@")
    cmd=${cmd% }
    started=$(date +%Y-%m-%dT%H:%M:%S%z)
    log "=== step $name: start (timeout ${limit}s): $cmd"
    t0=$(ms_now)
    timeout --signal="${SIGNAL:-TERM}" --kill-after=15 "$limit" "$@" < /dev/null 2>&1 | stamp \
        | tee -a "$LOG" "$PARTS/$name.out"
    status=${PIPESTATUS[0]}
    if [ "$status" -eq 0 ] && [ "$check" != "-" ]; then
        log "--- step $name: checking the benchmark's rows in $check"
        timeout 60 "$PY" benchmarks/gpu_check_report.py rows "$check" 2>&1 | stamp \
            | tee -a "$LOG" "$PARTS/$name.out"
        status=${PIPESTATUS[0]}
    fi
    wall=$(( $(ms_now) - t0 ))
    local secs="$((wall / 1000)).$((wall % 1000 / 100))s"
    case $status in
        0) log "=== step $name: ok, status 0, wall $secs" ;;
        124|137) log "=== step $name: FAILED, timed out after ${limit}s (status $status), wall $secs" ;;
        *) log "=== step $name: FAILED, status $status, wall $secs" ;;
    esac
    [ "$status" -eq 0 ] || FAILED+=("$name")
    local check_text=-
    [ "$check" = "-" ] || check_text="$PY benchmarks/gpu_check_report.py rows $check"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$wall" "$started" "$limit" "$check_text" "$cmd" \
        >> "$PARTS/steps.tsv"
}

if [ "$SMOKE" = 1 ]; then
    MODE=smoke
    DEVICE=cpu
    BENCH=(--device cpu --smoke --repeat 1)
    TRAIN=(--device cpu --smoke --repeat 1)
    PROBE=(--cpu)
    # one thread for PyTorch (BENCH_THREADS, read by benchmarks/common.py), OpenBLAS and numba: the smoke run
    # measures nothing, and on a 2-core machine busy with anything else their threads make it 3x slower
    export BENCH_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 NUMBA_NUM_THREADS=1
    # the benchmarks cut to one family each: LayerNorm's and RMSNorm's large cases at batch 2 (--only matches
    # "(2,512,1024) smoke": the GB/s and |ours - torch| columns are there) and the MLP's training step; the
    # whole smoke run is what CI pays on every push, and these check the same plumbing as every case would
    BENCH+=(--only "(2,512,1024) smoke")
    TRAIN+=(--only MLP)
    DOUBLE=(--device cpu --repeat 1 --batch 2 --only BatchNorm2d)  # the BN critic: create_graph through conv and BN
    # the small selection: test_gpu.py (skips here) and one float16 kernels test on the NumPy reference kernels
    # (-k "not numba" leaves out its numba halves, whose JIT compiles take seconds; its cuda halves skip here)
    DEFAULT_TESTS=(tests/test_gpu.py tests/test_kernels.py::test_float16_statistics_are_accumulated_wider
                   -k "not numba")
    T_INSTALL=30 T_PROBE=30 T_TESTS=120 T_NORMS=60 T_TRAIN=60 T_DOUBLE=60
else
    MODE=gpu
    DEVICE=cuda
    BENCH=(--device cuda --repeat 10)  # the default is 15: 10 to fit the budget above
    TRAIN=(--device cuda --repeat 10)
    DOUBLE=(--device cuda --repeat 10)
    PROBE=()
    # the whole suite (setup.cfg's testpaths) but this script's own test, whose smoke run of this script (~40 s
    # of CPU benchmarks) checks nothing that this run does not check for real
    DEFAULT_TESTS=(--ignore=tests/test_gpu_check.py)
    T_INSTALL=30 T_PROBE=25 T_TESTS=265 T_NORMS=60 T_TRAIN=35 T_DOUBLE=30  # the budget above: 505 s
fi
if [ -n "$TESTS" ]; then
    read -r -a TEST_ARGS <<< "$TESTS"
else
    TEST_ARGS=(${DEFAULT_TESTS[@]+"${DEFAULT_TESTS[@]}"})
fi

log "gpu_check.sh --$MODE: repository $ROOT, python $PY, output $OUT_DIR, device $DEVICE"

# 1. install: the local wheels, then the project itself (editable), never the network
if [ "$INSTALL" = 1 ]; then
    shopt -s nullglob
    WHEELS=("$ROOT"/wheels/*.whl)
    shopt -u nullglob
    INSTALL_CMD="set -e"
    if [ ${#WHEELS[@]} -gt 0 ]; then
        INSTALL_CMD+="; $(printf '%q ' "$PY" -m pip install --no-index --no-deps "${WHEELS[@]#"$ROOT"/}")"
    else
        INSTALL_CMD+="; echo 'no wheels/*.whl to install'"
    fi
    INSTALL_CMD+="; $(printf '%q ' "$PY" -m pip install --no-index --no-deps --no-build-isolation -e .)"
    INSTALL_CMD+="; $(printf '%q ' "$PY" -c 'import tinygrad_norm; print("tinygrad_norm from", tinygrad_norm.__file__)')"
    run_step install "$T_INSTALL" - bash -c "$INSTALL_CMD"
else
    # --no-install (implied by --smoke): the project must already be installed in this Python
    run_step install "$T_INSTALL" - "$PY" -c \
        'import tinygrad_norm; print("--no-install: tinygrad_norm is installed already, from", tinygrad_norm.__file__)'
fi

# 2. the environment probe: versions, the GPU and a tiny CuPy op first, so that a broken GPU shows up first
run_step probe "$T_PROBE" - \
    "$PY" benchmarks/gpu_check_report.py probe --env-json "$PARTS/env.json" ${PROBE[@]+"${PROBE[@]}"}

# 3. the test suite (on a GPU the cuda parameters run); counts from the junit XML. SIGINT on a timeout: pytest
# stops as for Ctrl-C and still prints its summary and writes the XML, so the counts so far are not lost
SIGNAL=INT run_step tests "$T_TESTS" - "$PY" -m pytest -q -p no:cacheprovider -rfEs --durations=30 \
    --junitxml="$PARTS/pytest.xml" ${TEST_ARGS[@]+"${TEST_ARGS[@]}"}

# 4-6. the benchmarks, each writing its JSON into parts/ (read into the report)
run_step bench_norms_float32 "$T_NORMS" "$PARTS/bench_norms_float32.json" \
    "$PY" benchmarks/bench_norms.py "${BENCH[@]}" --dtype float32 --json "$PARTS/bench_norms_float32.json"
run_step bench_norms_float16 "$T_NORMS" "$PARTS/bench_norms_float16.json" \
    "$PY" benchmarks/bench_norms.py "${BENCH[@]}" --dtype float16 --json "$PARTS/bench_norms_float16.json"
run_step bench_training "$T_TRAIN" "$PARTS/bench_training.json" \
    "$PY" benchmarks/bench_training.py "${TRAIN[@]}" --json "$PARTS/bench_training.json"
run_step bench_double_backward "$T_DOUBLE" "$PARTS/bench_double_backward.json" \
    "$PY" benchmarks/bench_double_backward.py "${DOUBLE[@]}" --json "$PARTS/bench_double_backward.json"

# the one JSON
timeout 60 "$PY" benchmarks/gpu_check_report.py report --parts "$PARTS" --mode "$MODE" --out "$JSON" 2>&1 \
    | stamp | tee -a "$LOG"
REPORT_STATUS=${PIPESTATUS[0]}
[ "$REPORT_STATUS" -eq 0 ] || { log "the report could not be written (status $REPORT_STATUS)"; FAILED+=(report); }

if [ ${#FAILED[@]} -gt 0 ]; then
    log "gpu_check.sh: FAILED steps: ${FAILED[*]} (log $LOG, report $JSON)"
    exit 1
fi
log "gpu_check.sh: every step ok (log $LOG, report $JSON)"
exit 0
