#!/usr/bin/env bash
# Pretrains KR-BERT-MEDIUM on a Cloud TPU VM, as published: 2,000,000 steps,
# max_seq_length 128, batch 64, learning rate 1e-4 (10,000 warm-up steps), masked LM +
# next sentence prediction, on TensorFlow 2.15 (tf.compat.v1 + TPUEstimator).
#
#   BUCKET=my-bucket TPU_NAME=krbert TPU_ZONE=europe-west4-a GCP_PROJECT=my-project \
#     scripts/pretrain_tpu.sh
#   DRY_RUN=1 BUCKET=... scripts/pretrain_tpu.sh     only print every command
#   scripts/pretrain_tpu.sh --do_eval=true            extra flags go to run_pretraining.py
#
# Run from any machine with gcloud, it: (1) creates the TPU VM unless it exists,
# (2) copies this checkout (git ls-files) to it, (3) there runs TPU_VM=1 TF=2
# scripts/setup.sh (a venv on the preinstalled TensorFlow) and (4) starts the run in the
# background on the VM, logging to ~/krbert/pretrain_tpu.log (follow it with the printed
# ssh command). Run on the TPU VM itself it does (3) and (4) in the foreground.
#
# Why TensorFlow 2.15 and "-se": TPU Nodes (the TensorFlow 1.15 way) were retired on
# 15 April 2025; TPU VM runtimes start at TF 2.7.3 and TF 2.16 removed tf.estimator, so
# tpu-vm-tf-2.15.1 is the last runtime that runs this code. From 2.15 the runtime names
# the device API: -se (stream executor) or -pjrt (cloud.google.com/tpu/docs/runtimes).
# TPUEstimator is built on the stream executor TPU platform: it works on v3 with TF 2.15,
# and under PJRT (v5p) it fails with "No TPU platform registered" and a segfault
# (github.com/tensorflow/tensorflow/issues/90807). Hence tpu-vm-tf-2.15.1-se on v2/v3.
#
# Environment: BUCKET (with or without gs://), TPU_NAME, TPU_ZONE, GCP_PROJECT (required).
# ACCELERATOR (default v3-8; v3-32 and up are pod slices), RUNTIME (default
# tpu-vm-tf-2.15.1-se, tpu-vm-tf-2.15.1-pod-se for pod slices), INPUT (default
# gs://$BUCKET/pretrain_data/*.tfrecord, from create_pretraining_data.py with
# --max_seq_length=128 --max_predictions_per_seq=20), OUTPUT_DIR (default
# gs://$BUCKET/krbert_medium), INIT_CHECKPOINT, BERT_CONFIG (default
# vocab/bert_config_medium.json), TRAIN_BATCH_SIZE (default 64), PYTHON (on the VM).
# The TPU reads the data and writes the checkpoints itself, so both are on gs://; the
# TPU VM's service account needs read and write access to the bucket. Rerunning the same
# command resumes from the last checkpoint in OUTPUT_DIR.
#
# Pod slices (v3-32 = 4 hosts, 32 cores): TensorFlow drives a slice from one client, so
# the run starts on worker 0 only, with --tpu_name=$TPU_NAME (not local) and
# --num_tpu_cores from ACCELERATOR; each host feeds its own cores (TPUEstimator's
# PER_HOST_V2 input) from its own share of the input files. TRAIN_BATCH_SIZE stays the
# global batch (64 is 2 per core on v3-32; larger batches need a new learning rate).
#
# Delete the TPU VM afterwards (it is billed while it exists):
#   gcloud compute tpus tpu-vm delete "$TPU_NAME" --zone="$TPU_ZONE" --project="$GCP_PROJECT"
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/common.sh
source scripts/common.sh

for var in BUCKET TPU_NAME TPU_ZONE GCP_PROJECT; do
  [ -n "${!var:-}" ] || fail "$var is not set; run as BUCKET=... TPU_NAME=... TPU_ZONE=... GCP_PROJECT=... $0"
done
BUCKET=${BUCKET#gs://}
BUCKET=${BUCKET%/}
ACCELERATOR=${ACCELERATOR:-v3-8}
INPUT=${INPUT:-gs://$BUCKET/pretrain_data/*.tfrecord}
OUTPUT_DIR=${OUTPUT_DIR:-gs://$BUCKET/krbert_medium}
BERT_CONFIG=${BERT_CONFIG:-vocab/bert_config_medium.json}
TRAIN_BATCH_SIZE=${TRAIN_BATCH_SIZE:-64}
case "$INPUT" in gs://*) ;; *) fail "INPUT=$INPUT must be on gs:// (the TPU reads it)";; esac
case "$OUTPUT_DIR" in gs://*) ;; *) fail "OUTPUT_DIR=$OUTPUT_DIR must be on gs:// (the TPU writes it)";; esac
[ -f "$BERT_CONFIG" ] || fail "BERT_CONFIG=$BERT_CONFIG not found"

# Cores of the slice: the number in the accelerator type (v2/v3 count TensorCores).
case "$ACCELERATOR" in
  v2-[0-9]*|v3-[0-9]*) CORES=${ACCELERATOR#*-} ;;
  *) fail "ACCELERATOR=$ACCELERATOR: this script drives v2 and v3 TPUs (e.g. v3-8, v3-32); TPUEstimator fails on v5p under PJRT (tensorflow/tensorflow#90807)" ;;
esac
POD=0
if [ "$CORES" -gt 8 ]; then POD=1; fi
if [ "$POD" = 1 ]; then RUNTIME=${RUNTIME:-tpu-vm-tf-2.15.1-pod-se}; else RUNTIME=${RUNTIME:-tpu-vm-tf-2.15.1-se}; fi
[ $((TRAIN_BATCH_SIZE % CORES)) = 0 ] || fail "TRAIN_BATCH_SIZE=$TRAIN_BATCH_SIZE must be a multiple of the $CORES TPU cores of $ACCELERATOR"

# The TPU this run drives, as run_pretraining.py is told on the VM.
if [ "$POD" = 1 ]; then TPU_FLAG=$TPU_NAME; else TPU_FLAG=local; fi

# The training command, as run on the TPU VM (worker 0), in the checkout.
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

if [ "${ON_TPU_VM:-0}" = 1 ] || on_tpu_vm; then
  # On the TPU VM: the environment on the preinstalled TensorFlow, then the run.
  if [ -n "${PYTHON:-}" ]; then
    python=$PYTHON
  elif [ "${DRY_RUN:-0}" = 1 ]; then
    echo "TPU_VM=1 TF=2 scripts/setup.sh"
    python=.venv-tpu/bin/python
  else
    python=$(TPU_VM=1 TF=2 scripts/setup.sh | tail -n1)/bin/python
  fi
  eval "set -- $(train_command "$python" "$@")"
  run_or_print "$@"
fi

# From a workstation: create the TPU VM, copy the code, set up and start the run there.
GC=(--zone="$TPU_ZONE" --project="$GCP_PROJECT")
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
  GCP_PROJECT="$GCP_PROJECT" ACCELERATOR="$ACCELERATOR" INPUT="$INPUT" OUTPUT_DIR="$OUTPUT_DIR" \
  BERT_CONFIG="$BERT_CONFIG" TRAIN_BATCH_SIZE="$TRAIN_BATCH_SIZE" \
  INIT_CHECKPOINT="${INIT_CHECKPOINT:-}" ON_TPU_VM=1)
remote="mkdir -p krbert && tar -xzf krbert-code.tar.gz -C krbert && cd krbert"
remote+=" && TPU_VM=1 TF=2 scripts/setup.sh"
extra=""
if [ $# -gt 0 ]; then extra=$(printf '%q ' "$@"); fi
remote+=" && { $env_vars nohup scripts/pretrain_tpu.sh $extra > pretrain_tpu.log 2>&1 & }"
show gcloud compute tpus tpu-vm ssh "$TPU_NAME" "${GC[@]}" --worker=0 --command="$remote"
echo "On the TPU VM it runs:"
echo "  $(train_command "$(if [ "${DRY_RUN:-0}" = 1 ]; then echo .venv-tpu/bin/python; else echo '<venv>/bin/python'; fi)" "$@")"
echo "Follow it: gcloud compute tpus tpu-vm ssh $TPU_NAME --zone=$TPU_ZONE --project=$GCP_PROJECT --worker=0 --command='tail -f krbert/pretrain_tpu.log'"
