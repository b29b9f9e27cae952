#!/usr/bin/env bash
# Pretrains KR-BERT-MEDIUM on a Cloud TPU v3-8, as published: 2,000,000 steps,
# max_seq_length 128, batch 64, learning rate 1e-4 (10,000 warm-up steps, the original
# BERT default: 0.5% of the run), masked LM + next sentence prediction.
#
#   BUCKET=my-bucket TPU_NAME=krbert TPU_ZONE=europe-west4-a GCP_PROJECT=my-project \
#     scripts/pretrain_tpu.sh
#   DRY_RUN=1 BUCKET=... scripts/pretrain_tpu.sh      only print the command
#   scripts/pretrain_tpu.sh --do_eval=true             extra flags go to run_pretraining.py
#
# Required environment: BUCKET (name, with or without gs://), TPU_NAME, TPU_ZONE,
# GCP_PROJECT. Optional: INPUT (TFRecord globs, default gs://$BUCKET/pretrain_data/*.tfrecord,
# written by create_pretraining_data.py with --max_seq_length=128
# --max_predictions_per_seq=20), OUTPUT_DIR (default gs://$BUCKET/krbert_medium),
# INIT_CHECKPOINT, BERT_CONFIG (default vocab/bert_config_medium.json), PYTHON.
# The TPU reads the data and writes the checkpoints itself, so both must be on gs://.
# Rerunning the same command resumes from the last checkpoint in OUTPUT_DIR.
#
# Creating the TPU (TPU node with TensorFlow 1.15; run once, from any machine with gcloud):
#   gcloud config set project "$GCP_PROJECT"
#   gsutil mb -l europe-west4 "gs://$BUCKET"
#   gcloud compute tpus create "$TPU_NAME" --zone="$TPU_ZONE" \
#       --accelerator-type=v3-8 --version=1.15.5 --network=default
#   gcloud compute instances create krbert-vm --zone="$TPU_ZONE" \
#       --machine-type=n1-standard-8 --image-family=debian-10 \
#       --image-project=debian-cloud --boot-disk-size=200GB --scopes=cloud-platform
#   # give the TPU's service account (gcloud compute tpus describe "$TPU_NAME"
#   # --zone="$TPU_ZONE" --format='value(serviceAccount)') write access to the bucket:
#   gsutil iam ch "serviceAccount:<that account>:objectAdmin" "gs://$BUCKET"
# Then run this script on the VM. Delete the TPU afterwards:
#   gcloud compute tpus delete "$TPU_NAME" --zone="$TPU_ZONE"
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/common.sh
source scripts/common.sh

for var in BUCKET TPU_NAME TPU_ZONE GCP_PROJECT; do
  [ -n "${!var:-}" ] || fail "$var is not set; run as BUCKET=... TPU_NAME=... TPU_ZONE=... GCP_PROJECT=... $0"
done
BUCKET=${BUCKET#gs://}
BUCKET=${BUCKET%/}
INPUT=${INPUT:-gs://$BUCKET/pretrain_data/*.tfrecord}
OUTPUT_DIR=${OUTPUT_DIR:-gs://$BUCKET/krbert_medium}
BERT_CONFIG=${BERT_CONFIG:-vocab/bert_config_medium.json}
case "$INPUT" in gs://*) ;; *) fail "INPUT=$INPUT must be on gs:// (the TPU reads it)";; esac
case "$OUTPUT_DIR" in gs://*) ;; *) fail "OUTPUT_DIR=$OUTPUT_DIR must be on gs:// (the TPU writes it)";; esac
[ -f "$BERT_CONFIG" ] || fail "BERT_CONFIG=$BERT_CONFIG not found"

python=$(job_python)
cmd=("$python" run_pretraining.py
  --bert_config_file="$BERT_CONFIG"
  --input_file="$INPUT"
  --output_dir="$OUTPUT_DIR"
  --do_train=true
  --max_seq_length=128
  --max_predictions_per_seq=20
  --train_batch_size=64
  --learning_rate=1e-4
  --num_train_steps=2000000
  --num_warmup_steps=10000
  --save_checkpoints_steps=10000
  --iterations_per_loop=1000
  --use_tpu=true
  --tpu_name="$TPU_NAME"
  --tpu_zone="$TPU_ZONE"
  --gcp_project="$GCP_PROJECT"
  --num_tpu_cores=8)
if [ -n "${INIT_CHECKPOINT:-}" ]; then
  cmd+=(--init_checkpoint="$INIT_CHECKPOINT")
fi
cmd+=("$@")

run_or_print "${cmd[@]}"
