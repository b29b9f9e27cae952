#!/usr/bin/env bash
# Pretrains KR-BERT-MEDIUM on a Cloud TPU VM, as published: 2,000,000 steps,
# max_seq_length 128, batch 64, learning rate 1e-4 (10,000 warm-up steps), masked LM +
# next sentence prediction, bfloat16 compute, on TensorFlow 2.15 (tf.compat.v1 +
# TPUEstimator).
#
#   BUCKET=my-bucket TPU_NAME=krbert TPU_ZONE=europe-west4-a GCP_PROJECT=my-project \
#     scripts/pretrain_tpu.sh
#   DRY_RUN=1 BUCKET=... scripts/pretrain_tpu.sh     only print every command
#   DELETE=1 BUCKET=... scripts/pretrain_tpu.sh      wait for the run, then delete the VM
#   scripts/pretrain_tpu.sh --do_eval=true            extra flags go to run_pretraining.py
#
# Run from any machine with gcloud, it: (0) checks every setting below, before any gcloud
# call; (1) creates the TPU VM unless it exists; (2) copies this checkout (git ls-files)
# to it; (3) there runs TPU_VM=1 TF=2 scripts/setup.sh (a venv on the preinstalled
# TensorFlow); (4) runs a smoke job there in the foreground - SMOKE_STEPS steps into a
# scratch folder on the bucket - and stops with its last lines if it fails; (5) starts the
# long run in the background on the VM, logging to ~/krbert/pretrain_tpu.log; (6) prints
# how to follow it and the command that deletes the VM. With DELETE=1 it instead waits
# for the run to end (asking the VM every POLL_SECS) and then deletes the VM; it deletes
# it too when the smoke job fails. Run on the TPU VM itself it does (3) to (5) in the
# foreground.
#
# Why TensorFlow 2.15 and "-se": TPU Nodes (the TensorFlow 1.15 way) were retired on
# 15 April 2025; TPU VM runtimes start at TF 2.7.3 and TF 2.16 removed tf.estimator, so
# tpu-vm-tf-2.15.1 is the last runtime that runs this code. From 2.15 the runtime names
# the device API: -se (stream executor) or -pjrt (cloud.google.com/tpu/docs/runtimes).
# TPUEstimator is built on the stream executor TPU platform: it works on v3 with TF 2.15,
# and under PJRT (v5p) it fails with "No TPU platform registered" and a segfault
# (github.com/tensorflow/tensorflow/issues/90807). v2, v3 and v4 have -se runtimes (v4
# takes the same runtime names as v2/v3 from TF 2.10.1 on); v5e, v5p and v6e have only
# -pjrt ones for TensorFlow, so they are refused.
#
# Environment: BUCKET (with or without gs://), TPU_NAME, TPU_ZONE, GCP_PROJECT (required).
# ACCELERATOR (default v3-8; v2-N, v3-N, v4-N; v2/v3-32 and v4-16 and up are pod
# slices), RUNTIME (default tpu-vm-tf-2.15.1-se, tpu-vm-tf-2.15.1-pod-se for pod slices),
# INPUT (default gs://$BUCKET/pretrain_data/*.tfrecord, from create_pretraining_data.py
# with --max_seq_length=128 --max_predictions_per_seq=20), OUTPUT_DIR (default
# gs://$BUCKET/krbert_medium), INIT_CHECKPOINT (on gs://), BERT_CONFIG (default
# vocab/bert_config_medium.json), TRAIN_BATCH_SIZE (default 64), SMOKE_STEPS (default 20;
# 0 skips the smoke job), SMOKE_DIR (default gs://$BUCKET/krbert_smoke/<UTC time>),
# SMOKE_LOG (on the VM, default pretrain_tpu_smoke.log), DELETE, POLL_SECS (default
# 900), PYTHON (on the VM).
# The TPU reads the data and checkpoints and writes the checkpoints itself, so all of
# them are on gs://; the TPU VM's service account needs read and write access to the
# bucket. Rerunning the same command resumes from the last checkpoint in OUTPUT_DIR.
#
# Cores: v2 and v3 show TensorFlow one device per TensorCore (v3-8: 8), v4 one per chip
# (megacore; v4-8: 4 chips), and --num_tpu_cores is that count. Pod slices (v3-32 = 4
# hosts): TensorFlow drives a slice from one client, so the run starts on worker 0 only,
# with --tpu_name=$TPU_NAME (not local) and TPU_LOAD_LIBRARY=0 (the client talks to each
# host's TPU runtime instead of opening the chips itself, as TensorFlow's own pod test
# configurations set it); each host feeds its own cores (TPUEstimator's PER_HOST_V2
# input) from its own share of the input files. TRAIN_BATCH_SIZE stays the global batch
# (64 is 2 per core on v3-32; larger batches need a new learning rate).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/common.sh
source scripts/common.sh

# --- Every setting checked before the first gcloud call (one line each) ---------------

for var in BUCKET TPU_NAME TPU_ZONE GCP_PROJECT; do
  [ -n "${!var:-}" ] || fail "$var is not set; run as BUCKET=... TPU_NAME=... TPU_ZONE=... GCP_PROJECT=... $0"
done
GIVEN_BUCKET=$BUCKET
BUCKET=${BUCKET#gs://}
BUCKET=${BUCKET%/}
# Cloud Storage bucket names: 3-63 characters (up to 222 with dots) of lower-case
# letters, digits, -, _ and ., starting and ending with a letter or digit.
if [ -z "$BUCKET" ]; then
  fail "BUCKET=$GIVEN_BUCKET names no bucket; give its name, e.g. BUCKET=my-bucket"
fi
if ! [[ "$BUCKET" =~ ^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$ ]] || [[ "$BUCKET" == *..* ]] ||
   { [[ "$BUCKET" != *.* ]] && [ ${#BUCKET} -gt 63 ]; }; then
  fail "BUCKET=$GIVEN_BUCKET is not a Cloud Storage bucket name (3-63 lower-case letters, digits, -, _ or ., no spaces or slashes); give the bucket alone, e.g. BUCKET=my-bucket"
fi

ACCELERATOR=${ACCELERATOR:-v3-8}
# CORES: the TPU devices TensorFlow sees (--num_tpu_cores); HOSTS: the VMs of the slice.
if [[ "$ACCELERATOR" =~ ^v([234])-([1-9][0-9]{0,4})$ ]]; then
  GENERATION=${BASH_REMATCH[1]}
  SIZE=${BASH_REMATCH[2]}
elif [[ "$ACCELERATOR" =~ ^v(5litepod|5e|5p|6e)-[1-9][0-9]*$ ]]; then
  fail "ACCELERATOR=$ACCELERATOR: TensorFlow has only -pjrt runtimes on v5e, v5p and v6e, where TPUEstimator fails (tensorflow/tensorflow#90807); use a v2, v3 or v4 TPU (e.g. ACCELERATOR=v3-8 or v4-8)"
else
  fail "ACCELERATOR=$ACCELERATOR is not a TPU type this script drives; give v2-N, v3-N or v4-N with N the TensorCores of the slice, e.g. ACCELERATOR=v3-8, v3-32 or v4-8"
fi
if [ $((SIZE % 8)) != 0 ] || { [ "$GENERATION" != 4 ] && [ "$SIZE" != 8 ] && [ $((SIZE % 32)) != 0 ]; }; then
  fail "ACCELERATOR=$ACCELERATOR is not a TPU slice size; v2 and v3 come as 8 or a multiple of 32 TensorCores (v3-8, v3-32, ...), v4 as a multiple of 8 (v4-8, v4-16, ...)"
fi
if [ "$GENERATION" = 4 ]; then CORES=$((SIZE / 2)); else CORES=$SIZE; fi
HOSTS=$((SIZE / 8))
POD=0
if [ "$HOSTS" -gt 1 ]; then POD=1; fi
if [ "$POD" = 1 ]; then RUNTIME=${RUNTIME:-tpu-vm-tf-2.15.1-pod-se}; else RUNTIME=${RUNTIME:-tpu-vm-tf-2.15.1-se}; fi
case "$RUNTIME" in
  tpu-vm-tf-2.15.*-pod-se) [ "$POD" = 1 ] || fail "RUNTIME=$RUNTIME is a pod runtime, but $ACCELERATOR is one host; use RUNTIME=tpu-vm-tf-2.15.1-se or leave RUNTIME unset" ;;
  tpu-vm-tf-2.15.*-se) [ "$POD" = 0 ] || fail "RUNTIME=$RUNTIME is a one-host runtime, but $ACCELERATOR is a pod slice of $HOSTS hosts; use RUNTIME=tpu-vm-tf-2.15.1-pod-se or leave RUNTIME unset" ;;
  *) fail "RUNTIME=$RUNTIME: TPUEstimator needs TensorFlow 2.15 with the stream executor (a tpu-vm-tf-2.15.x-se or -pod-se runtime); leave RUNTIME unset for tpu-vm-tf-2.15.1-se" ;;
esac

TRAIN_BATCH_SIZE=${TRAIN_BATCH_SIZE:-64}
[[ "$TRAIN_BATCH_SIZE" =~ ^[1-9][0-9]{0,8}$ ]] || fail "TRAIN_BATCH_SIZE=$TRAIN_BATCH_SIZE is not a positive whole number; give the global batch, e.g. TRAIN_BATCH_SIZE=64"
[ $((TRAIN_BATCH_SIZE % CORES)) = 0 ] || fail "TRAIN_BATCH_SIZE=$TRAIN_BATCH_SIZE must be a multiple of the $CORES TPU cores of $ACCELERATOR"
SMOKE_STEPS=${SMOKE_STEPS:-20}
[[ "$SMOKE_STEPS" =~ ^(0|[1-9][0-9]{0,6})$ ]] || fail "SMOKE_STEPS=$SMOKE_STEPS is not a whole number of steps; give e.g. SMOKE_STEPS=20 (0 skips the smoke job)"
POLL_SECS=${POLL_SECS:-900}
[[ "$POLL_SECS" =~ ^[1-9][0-9]{0,6}$ ]] || fail "POLL_SECS=$POLL_SECS is not a positive whole number of seconds"

INPUT=${INPUT:-gs://$BUCKET/pretrain_data/*.tfrecord}
OUTPUT_DIR=${OUTPUT_DIR:-gs://$BUCKET/krbert_medium}
SMOKE_DIR=${SMOKE_DIR:-gs://$BUCKET/krbert_smoke/$(date -u +%Y%m%d-%H%M%S)}
BERT_CONFIG=${BERT_CONFIG:-vocab/bert_config_medium.json}
for var in INPUT OUTPUT_DIR SMOKE_DIR; do
  [[ "${!var}" =~ ^gs://[a-z0-9][^/[:space:]]*/[^[:space:]]+$ ]] || fail "$var=${!var} must be a folder or files in a gs:// bucket, e.g. gs://$BUCKET/... (the TPU reads and writes Cloud Storage only)"
done
if [ -n "${INIT_CHECKPOINT:-}" ]; then
  [[ "$INIT_CHECKPOINT" =~ ^gs://[a-z0-9][^/[:space:]]*/[^[:space:]]+$ ]] || fail "INIT_CHECKPOINT=$INIT_CHECKPOINT must be on gs://: the TPU reads the checkpoint itself, from Cloud Storage only; copy it there first (gsutil cp '$INIT_CHECKPOINT*' gs://$BUCKET/init/) and give INIT_CHECKPOINT=gs://$BUCKET/init/$(basename "$INIT_CHECKPOINT")"
fi
[ "$SMOKE_DIR" != "$OUTPUT_DIR" ] || fail "SMOKE_DIR=$SMOKE_DIR is OUTPUT_DIR; the smoke job needs a scratch folder of its own"
[ -f "$BERT_CONFIG" ] || fail "BERT_CONFIG=$BERT_CONFIG not found (a path in this checkout, copied to the VM)"

# The TPU this run drives, as run_pretraining.py is told on the VM.
if [ "$POD" = 1 ]; then TPU_FLAG=$TPU_NAME; else TPU_FLAG=local; fi

# train_command PYTHON [FLAG...]: the training command as run on the TPU VM (worker 0),
# in the checkout, shell-quoted; later flags override earlier ones.
train_command() {
  local python=$1
  shift
  local cmd=("$python" run_pretraining.py
    --bert_config_file="$BERT_CONFIG"
    --input_file="$INPUT"
    --output_dir="$OUTPUT_DIR"
    --do_train=true
    --max_seq_length=128
    --max_predictions_per_seq=20
    --train_batch_size="$TRAIN_BATCH_SIZE"
    --learning_rate=1e-4
    --num_train_steps=2000000
    --num_warmup_steps=10000
    --save_checkpoints_steps=10000
    --iterations_per_loop=1000
    --use_bfloat16=true
    --use_tpu=true
    --tpu_name="$TPU_FLAG"
    --tpu_zone="$TPU_ZONE"
    --gcp_project="$GCP_PROJECT"
    --num_tpu_cores="$CORES")
  if [ -n "${INIT_CHECKPOINT:-}" ]; then
    cmd+=(--init_checkpoint="$INIT_CHECKPOINT")
  fi
  printf '%q ' "${cmd[@]}" "$@"
}

# smoke_command PYTHON [FLAG...]: the same run for SMOKE_STEPS steps into SMOKE_DIR.
smoke_command() {
  local python=$1 loop=$(( SMOKE_STEPS < 10 ? SMOKE_STEPS : 10 ))
  shift
  train_command "$python" "$@" --output_dir="$SMOKE_DIR" --num_train_steps="$SMOKE_STEPS" \
    --iterations_per_loop="$loop" --save_checkpoints_steps="$SMOKE_STEPS"
}

# The command that deletes the TPU VM (it is billed while it exists).
DELETE_CMD=(gcloud compute tpus tpu-vm delete "$TPU_NAME" --zone="$TPU_ZONE"
            --project="$GCP_PROJECT" --quiet)

on_tpu_vm() {
  compgen -G "/dev/accel[0-9]*" >/dev/null || compgen -G "/dev/vfio/[0-9]*" >/dev/null
}

# show CMD...: prints the command (shell-quoted); runs it unless DRY_RUN=1.
show() {
  printf '%q ' "$@"
  echo
  if [ "${DRY_RUN:-0}" != 1 ]; then
    "$@"
  fi
}

# run_smoke PYTHON [FLAG...]: on the VM, the smoke job; on failure its last lines and exit 1.
run_smoke() {
  [ "$SMOKE_STEPS" != 0 ] || return 0
  local log=${SMOKE_LOG:-pretrain_tpu_smoke.log}
  eval "set -- $(smoke_command "$@")"
  echo "Smoke job ($SMOKE_STEPS steps into $SMOKE_DIR, log $log):"
  printf '%q ' "$@"
  echo
  [ "${DRY_RUN:-0}" != 1 ] || return 0
  if ! "$@" > "$log" 2>&1; then
    echo "error: the smoke job ($SMOKE_STEPS steps into $SMOKE_DIR) failed, so the long run was not started; its last lines ($log):" >&2
    tail -n 15 "$log" >&2
    exit 1
  fi
  echo "Smoke job passed; its scratch folder can go: gsutil -m rm -r $SMOKE_DIR"
}

if [ "${ON_TPU_VM:-0}" = 1 ] || on_tpu_vm; then
  # On the TPU VM: the environment on the preinstalled TensorFlow, the smoke job (STAGE
  # unset or smoke), then the long run (STAGE unset or train).
  if [ -n "${PYTHON:-}" ]; then
    python=$PYTHON
  elif [ "${DRY_RUN:-0}" = 1 ]; then
    echo "TPU_VM=1 TF=2 scripts/setup.sh"
    python=.venv-tpu/bin/python
  else
    python=$(TPU_VM=1 TF=2 scripts/setup.sh | tail -n1)/bin/python
  fi
  if [ "$POD" = 1 ]; then export TPU_LOAD_LIBRARY=0; fi
  if [ "${STAGE:-}" != train ]; then run_smoke "$python" "$@"; fi
  if [ "${STAGE:-}" = smoke ]; then exit 0; fi
  eval "set -- $(train_command "$python" "$@")"
  run_or_print "$@"
fi

# From a workstation: create the TPU VM, copy the code, set up, smoke-test and start the
# run there.
GC=(--zone="$TPU_ZONE" --project="$GCP_PROJECT")
delete_hint() {
  echo "Delete the TPU VM when done (it is billed while it exists): $(printf '%q ' "${DELETE_CMD[@]}")"
}
if [ "${DRY_RUN:-0}" = 1 ] ||
   ! gcloud compute tpus tpu-vm describe "$TPU_NAME" "${GC[@]}" >/dev/null 2>&1; then
  show gcloud compute tpus tpu-vm create "$TPU_NAME" "${GC[@]}" \
    --accelerator-type="$ACCELERATOR" --version="$RUNTIME"
else
  echo "pretrain_tpu.sh: TPU VM $TPU_NAME exists; using it" >&2
fi
ARCHIVE=${TMPDIR:-/tmp}/krbert-code.tar.gz
show bash -c "git ls-files -z | tar --null -czf $(printf '%q' "$ARCHIVE") -T -"
show gcloud compute tpus tpu-vm scp "$ARCHIVE" "$TPU_NAME":krbert-code.tar.gz "${GC[@]}" --worker=0
env_vars=$(printf '%q ' BUCKET="$BUCKET" TPU_NAME="$TPU_NAME" TPU_ZONE="$TPU_ZONE" \
  GCP_PROJECT="$GCP_PROJECT" ACCELERATOR="$ACCELERATOR" RUNTIME="$RUNTIME" INPUT="$INPUT" \
  OUTPUT_DIR="$OUTPUT_DIR" BERT_CONFIG="$BERT_CONFIG" TRAIN_BATCH_SIZE="$TRAIN_BATCH_SIZE" \
  INIT_CHECKPOINT="${INIT_CHECKPOINT:-}" SMOKE_STEPS="$SMOKE_STEPS" SMOKE_DIR="$SMOKE_DIR" \
  ON_TPU_VM=1)
extra=""
if [ $# -gt 0 ]; then extra=$(printf '%q ' "$@"); fi
setup="mkdir -p krbert && tar -xzf krbert-code.tar.gz -C krbert && cd krbert"
setup+=" && TPU_VM=1 TF=2 scripts/setup.sh"
if ! show gcloud compute tpus tpu-vm ssh "$TPU_NAME" "${GC[@]}" --worker=0 \
       --command="$setup && $env_vars STAGE=smoke scripts/pretrain_tpu.sh $extra"; then
  echo "error: the set-up or the smoke job failed on TPU VM $TPU_NAME (its last lines above); the long run was not started" >&2
  if [ "${DELETE:-0}" = 1 ]; then show "${DELETE_CMD[@]}"; else delete_hint >&2; fi
  exit 1
fi
# The long run in the background; its exit status goes to pretrain_tpu.status at the end.
long_run="$env_vars STAGE=train scripts/pretrain_tpu.sh $extra; echo \$? > pretrain_tpu.status"
start="cd krbert && rm -f pretrain_tpu.status"
start+=" && { nohup bash -c $(printf '%q' "$long_run") > pretrain_tpu.log 2>&1 & }"
show gcloud compute tpus tpu-vm ssh "$TPU_NAME" "${GC[@]}" --worker=0 --command="$start"
echo "On the TPU VM it runs:"
echo "  $(train_command "$(if [ "${DRY_RUN:-0}" = 1 ]; then echo .venv-tpu/bin/python; else echo '<venv>/bin/python'; fi)" "$@")"
echo "Follow it: gcloud compute tpus tpu-vm ssh $TPU_NAME --zone=$TPU_ZONE --project=$GCP_PROJECT --worker=0 --command='tail -f krbert/pretrain_tpu.log'"
if [ "${DELETE:-0}" != 1 ]; then
  delete_hint
  exit 0
fi
# DELETE=1: wait for the run to end, then delete the VM.
echo "DELETE=1: asking TPU VM $TPU_NAME every $POLL_SECS s whether the run has ended, then deleting it"
if [ "${DRY_RUN:-0}" != 1 ]; then
  while ! status=$(gcloud compute tpus tpu-vm ssh "$TPU_NAME" "${GC[@]}" --worker=0 \
                     --command="cat krbert/pretrain_tpu.status" 2>/dev/null) ||
        [ -z "$status" ]; do
    sleep "$POLL_SECS"
  done
  echo "The run ended with status $status; its last lines:"
  gcloud compute tpus tpu-vm ssh "$TPU_NAME" "${GC[@]}" --worker=0 \
    --command="tail -n 5 krbert/pretrain_tpu.log" || true
fi
show "${DELETE_CMD[@]}"
