#!/usr/bin/env bash
# `make test-slurm`: seqlab submit/status against a real single-node Slurm.
#
# Starts munged, slurmctld and slurmd on this machine (installing Debian's
# packages when missing), then:
#   1. submits a 4-cell grid as a job array and checks every cell's
#      config.toml, metrics.csv and summary.toml against a local `seqlab run`,
#      that each task ran exactly its own cell, and that the report job ran;
#   2. submits a failing cell and a slow one, cancels the slow one mid-run,
#      checks `seqlab status` names both, resubmits, and checks that only
#      those two ran again (the grid's files untouched);
#   3. submits a cell longer than its 2-minute time limit: Slurm's USR1
#      warning stops it with its checkpoint, the task requeues itself, and
#      the requeued task resumes and ends byte for byte as a local run.
# Needs root (to install packages and start the daemons). Stops every daemon
# it started, by PID, on exit.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BIN="$REPO/target/release/seqlab"
FIXTURE="$REPO/tests/fixtures/jena_head.csv"
START=$SECONDS
FAILURES=0

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILURES=$((FAILURES + 1)); }
die() { echo "FAIL: $*" >&2; exit 1; }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }

[[ $(id -u) -eq 0 ]] || die "make test-slurm needs root: it installs Slurm and munge with apt-get and starts slurmctld, slurmd and munged (run it as root, e.g. in CI)"
[[ -x $BIN ]] || die "$BIN is missing; run \`make build\` first"

# --- packages -----------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || die "Slurm is not installed and there is no apt-get to install it (needs slurmctld slurmd slurm-client munge)"
    echo "seqlab test-slurm: installing slurmctld slurmd slurm-client munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed; cannot install Slurm"
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null \
        || die "apt-get install slurmctld slurmd slurm-client munge failed"
fi
MUNGED=$(command -v munged || echo /usr/sbin/munged)

WORK=$(mktemp -d /tmp/seqlab-slurm.XXXXXX)
SPOOL=/var/spool/seqlab-slurm
PIDS=()
cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [[ $rc -ne 0 ]]; then
        echo "logs kept in $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT

# --- munge --------------------------------------------------------------------
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    if [[ ! -s /etc/munge/munge.key ]]; then
        install -d -o munge -g munge -m 0700 /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    fi
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    rm -f /run/munge/munged.pid
    runuser -u munge -- "$MUNGED" --pid-file=/run/munge/munged.pid
    for _ in $(seq 50); do [[ -s /run/munge/munged.pid ]] && break; sleep 0.1; done
    [[ -s /run/munge/munged.pid ]] || die "munged did not start"
    PIDS+=("$(cat /run/munge/munged.pid)")
fi
munge -n | unmunge >/dev/null || die "munge does not work"

# --- slurm --------------------------------------------------------------------
NODE=$(hostname -s)
FREE_MB=$(awk '/MemAvailable/ { print int($2 / 1024) }' /proc/meminfo)
MEM=$((FREE_MB / 2 > 100000 ? 100000 : FREE_MB / 2))
rm -rf "$SPOOL"
install -d "$SPOOL/ctld" "$SPOOL/d"
export SLURM_CONF="$WORK/slurm.conf"
cat >"$SLURM_CONF" <<EOF
ClusterName=seqlabtest
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$SPOOL/ctld
SlurmdSpoolDir=$SPOOL/d
SlurmctldPidFile=/run/seqlab-slurmctld.pid
SlurmdPidFile=/run/seqlab-slurmd.pid
SlurmctldLogFile=$WORK/slurmctld.log
SlurmdLogFile=$WORK/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MailProg=/bin/true
KillWait=5
SchedulerParameters=sched_interval=2
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=2 RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld -D -c -f "$SLURM_CONF" >"$WORK/slurmctld.out" 2>&1 &
PIDS+=("$!")
slurmd -D -c -f "$SLURM_CONF" >"$WORK/slurmd.out" 2>&1 &
PIDS+=("$!")
for _ in $(seq 60); do
    state=$(sinfo -h -n "$NODE" -o %t 2>/dev/null || true)
    [[ $state == idle ]] && break
    sleep 1
done
[[ ${state:-} == idle ]] || { tail -20 "$WORK"/slurm*.log "$WORK"/*.out; die "the Slurm node did not become idle (state: ${state:-none})"; }
pass "single-node Slurm is up ($NODE, $(sinfo --version))"

# --- helpers ------------------------------------------------------------------
# Waits until none of the given job ids is in the queue.
wait_jobs() {
    local deadline=$((SECONDS + ${2:-300}))
    while [[ -n $(squeue -h -j "$1" 2>/dev/null) ]]; do
        ((SECONDS < deadline)) || { fail "jobs $1 still queued after ${2:-300} s"; squeue; return 1; }
        sleep 1
    done
}
latest() { find "$1/.slurm" -mindepth 1 -maxdepth 1 -type d | sort | tail -1; }
job_of() { awk -v k="$2" '$1 == k { print $2 }' "$1/jobs"; }
snapshot() { (cd "$1" && find . -printf '%p %i %s %T@\n' | sort); }

# tiny_jena of tests/common/mod.rs, with a grid.
experiment() { # name epochs extra-train grid
    cat >"$WORK/$1.toml" <<EOF
[experiment]
name = "$1"
title = "slurm test $1"

[data]
source = "jena"
path = "$FIXTURE"
lookback = 24
step = 2
delay = 6
batch_size = 16
splits = { train = [0, 300], val = [301, 450], test = [451, 592] }

[train]
epochs = $2
steps_per_epoch = 8
val_steps = 4
test_steps = 4
seed = 7
threads = 1
optimizer = { name = "rmsprop", lr = 0.005 }
$3

[[layers]]
type = "gru"
units = 8

[[layers]]
type = "dense"
units = 1

$([[ -n $4 ]] && printf '[grid]\n%s\n' "$4")
EOF
}

# --- 1. a grid as a job array equals a local run ------------------------------
experiment grid 3 "" '"layers.0.units" = [3, 32, 4, 16]'
LOCAL="$WORK/local"
SLURM="$WORK/slurm"
"$BIN" run "$WORK/grid.toml" --results "$LOCAL" --jobs 2 --threads 1 --no-report >"$WORK/local.out" 2>&1 \
    || { cat "$WORK/local.out"; die "local seqlab run failed"; }
"$BIN" submit "$WORK/grid.toml" --results "$SLURM" --max-parallel 2 --time 10:00 | tee "$WORK/submit1.out"
SUB1=$(latest "$SLURM")
check "first submit lists the 4 cells" test "$(wc -l <"$SUB1/cells")" -eq 4
check "the array script throttles with %2" grep -q '^#SBATCH --array=0-3%2$' "$SUB1/array.sbatch"
ARRAY1=$(job_of "$SUB1" array)
REPORT1=$(job_of "$SUB1" report)
check "the report job depends on the array (afterany)" \
    bash -c "scontrol show job $REPORT1 | grep -q 'Dependency=afterany:${ARRAY1}'"
wait_jobs "$ARRAY1,$REPORT1" 300
same=1
for cell in $(cd "$LOCAL/grid" && ls); do
    for f in config.toml metrics.csv summary.toml; do
        cmp -s "$LOCAL/grid/$cell/$f" "$SLURM/grid/$cell/$f" || { same=0; echo "differs: grid/$cell/$f"; }
    done
done
check "every cell's config.toml, metrics.csv and summary.toml equal the local run's" test $same -eq 1
check "4 local cells" test "$(ls "$LOCAL/grid" | wc -l)" -eq 4
check "each task ran exactly its own cell (units=3 not also units=32)" \
    test "$(cat "$SUB1"/logs/"${ARRAY1}"_*.out | grep -c '1 cell(s) to run')" -eq 4
check "the report job wrote summary.csv" test -s "$SLURM/summary.csv"
check "summary.csv has the 4 cells" test "$(grep -c '^grid,' "$SLURM/summary.csv")" -eq 4
"$BIN" submit "$WORK/grid.toml" --results "$SLURM" >"$WORK/submit-again.out"
check "a second submit of a complete grid sends nothing" grep -q "nothing to submit" "$WORK/submit-again.out"

# --- 2. a failed and a cancelled cell; resubmit sends only those --------------
experiment trouble 5000 'loss = "mse"' '"train.optimizer.lr" = [1e30, 0.005]'
BEFORE=$(snapshot "$SLURM/grid")
"$BIN" submit "$WORK/grid.toml" "$WORK/trouble.toml" --results "$SLURM" | tee "$WORK/submit2.out"
SUB2=$(latest "$SLURM")
check "second submit sends only the 2 new cells" test "$(sort "$SUB2/cells" | tr '\n' ' ')" = "trouble/lr=0.005 trouble/lr=1e30 "
ARRAY2=$(job_of "$SUB2" array)
REPORT2=$(job_of "$SUB2" report)
SLOW_TASK=$(($(grep -n '^trouble/lr=0.005$' "$SUB2/cells" | cut -d: -f1) - 1))
deadline=$((SECONDS + 120))
until compgen -G "$SLURM/trouble/.lr=0.005.partial-*" >/dev/null; do
    ((SECONDS < deadline)) || die "the slow cell never started"
    sleep 0.5
done
sleep 2
"$BIN" status "$SLURM" | tee "$WORK/status-running.out"
check "status shows the slow cell running" grep -Eq '^trouble/lr=0.005 +running' "$WORK/status-running.out"
"$BIN" run "$WORK/grid.toml" "$WORK/trouble.toml" --only trouble/lr=0.005 --results "$SLURM" --jobs 1 --threads 1 --no-report >"$WORK/busy.out" 2>&1 || true
check "the lock keeps a second run off the running cell" grep -q "is being run by process" "$WORK/busy.out"
scancel "${ARRAY2}_${SLOW_TASK}"
wait_jobs "$ARRAY2,$REPORT2" 120
"$BIN" status "$SLURM" | tee "$WORK/status.out"
check "status names the failed cell with its reason" grep -Eq '^trouble/lr=1e30 +failed: .*non-finite|^trouble/lr=1e30 +failed: loss became' "$WORK/status.out"
check "status names the cancelled cell as missing, or interrupted with its checkpoint" \
    grep -Eq '^trouble/lr=0.005 +(missing|interrupted at epoch [0-9]+, checkpoint present)' "$WORK/status.out"
check "the cancelled cell has no summary" test ! -e "$SLURM/trouble/lr=0.005/summary.toml"
check "status shows the grid complete" test "$(grep -Ec '^grid/units=[0-9]+ +complete$' "$WORK/status.out")" -eq 4
FAILED_MTIME=$(stat -c %Y.%y "$SLURM/trouble/lr=1e30/summary.toml")
sleep 1
"$BIN" submit "$WORK/grid.toml" "$WORK/trouble.toml" --results "$SLURM" | tee "$WORK/submit3.out"
SUB3=$(latest "$SLURM")
check "resubmit sends exactly the failed and the cancelled cell" test "$(sort "$SUB3/cells" | tr '\n' ' ')" = "trouble/lr=0.005 trouble/lr=1e30 "
wait_jobs "$(job_of "$SUB3" array),$(job_of "$SUB3" report)" 300
check "the cancelled cell is complete after the resubmit" grep -q '^status = "complete"' "$SLURM/trouble/lr=0.005/summary.toml"
check "the failed cell ran again" test "$(stat -c %Y.%y "$SLURM/trouble/lr=1e30/summary.toml")" != "$FAILED_MTIME"
check "the grid's files are untouched (names, inodes, sizes, mtimes)" test "$(snapshot "$SLURM/grid")" = "$BEFORE"
check "the final report lists all 6 cells" test "$(grep -Ec '^(grid|trouble),' "$SLURM/summary.csv")" -eq 6

# --- 3. a task past its time limit's warning is requeued and resumes ---------
# A cell of about three minutes under a 2-minute limit: Slurm's warning (USR1,
# here 60 s before the limit) stops it at a step boundary with its last
# end-of-epoch checkpoint, the task requeues itself (again if warned again),
# and the requeued task resumes from the checkpoint to the end — byte for
# byte a local run. The cell's length is measured, not assumed: one timed
# epoch sets the steps per epoch, so a faster build or machine still gives a
# cell that outlives the warning (a fixed step count once ran in 41 s and
# ended before Slurm's warning came).
experiment long 16 "" ""
CALIBRATION_STEPS=20000
t0=$(date +%s%N)
"$BIN" run "$WORK/long.toml" --set train.epochs=1 --set train.steps_per_epoch=$CALIBRATION_STEPS \
    --results "$WORK/calibration" --jobs 1 --threads 1 --no-report >"$WORK/calibration.out" 2>&1 \
    || { cat "$WORK/calibration.out"; die "the timed epoch of the long cell failed"; }
epoch_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
# 16 epochs of about 11 s each: about 180 s, three 60 s slices of progress.
steps=$(( CALIBRATION_STEPS * 11000 / (epoch_ms > 0 ? epoch_ms : 1) ))
((steps >= CALIBRATION_STEPS)) || steps=$CALIBRATION_STEPS
echo "seqlab test-slurm: one epoch of $CALIBRATION_STEPS steps took $epoch_ms ms; the long cell runs 16 epochs of $steps steps"
LONG_SETS=(--set train.steps_per_epoch=$steps)
# The local reference runs beside the Slurm task (one thread each; a cell's
# results do not depend on what runs beside it).
"$BIN" run "$WORK/long.toml" "${LONG_SETS[@]}" --results "$LOCAL" --jobs 1 --threads 1 --no-report >"$WORK/local-long.out" 2>&1 &
LOCAL_LONG=$!
PIDS+=("$LOCAL_LONG")
"$BIN" submit "$WORK/long.toml" "${LONG_SETS[@]}" --results "$SLURM" --time 2 --sbatch-arg=--signal=B:USR1@60 | tee "$WORK/submit4.out"
SUB4=$(latest "$SLURM")
check "the array script asks for a warning and requeueing" \
    bash -c "grep -q '^#SBATCH --signal=B:USR1@' '$SUB4/array.sbatch' && grep -q '^#SBATCH --requeue$' '$SUB4/array.sbatch'"
wait_jobs "$(job_of "$SUB4" array),$(job_of "$SUB4" report)" 1200
wait "$LOCAL_LONG" || { cat "$WORK/local-long.out"; die "local seqlab run of the long cell failed"; }
cat "$SUB4"/logs/*_0.out >"$WORK/long-task.out" 2>/dev/null || true
check "the long task was warned, stopped and requeued itself" grep -q "stopped with its checkpoint before the time limit; requeueing it" "$WORK/long-task.out"
check "the requeued task resumed from the checkpoint" grep -q "resuming long/default at epoch" "$WORK/long-task.out"
same=1
for f in metrics.csv summary.toml weights.safetensors; do
    cmp -s "$LOCAL/long/default/$f" "$SLURM/long/default/$f" || { same=0; echo "differs: long/default/$f"; }
done
check "the requeued cell's metrics.csv, summary.toml and weights equal the local uninterrupted run's" test $same -eq 1
check "the finished cell keeps no checkpoint" test ! -e "$SLURM/long/.default.checkpoint"

echo "seqlab test-slurm: $FAILURES failure(s) in $((SECONDS - START)) s"
[[ $FAILURES -eq 0 ]]
