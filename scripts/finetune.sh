#!/usr/bin/env bash
# Fine-tunes KR-BERT-MEDIUM on TASK (NSMC or HATE) with the model card's settings (NSMC
# test accuracy 90.29, HATE macro-F1 57.91): max_seq_length 128, batch 128, learning rate
# 5e-5, 5 epochs, do_lower_case=False; trains, evaluates on dev and predicts test (NSMC:
# test_eval_results.txt with the test accuracy; HATE: submission.csv). The entry points
# scripts/finetune_nsmc.sh and scripts/finetune_hate.sh set TASK.
#
#   TASK=NSMC INIT_CHECKPOINT=ckpt/model.ckpt-2000000 scripts/finetune.sh     CPU
#   TASK=HATE TF=2 INIT_CHECKPOINT=... scripts/finetune.sh                   TensorFlow 2.15
#   TASK=NSMC USE_TPU=1 BUCKET=my-bucket TPU_NAME=krbert scripts/finetune.sh  Cloud TPU
#   DRY_RUN=1 TASK=NSMC scripts/finetune.sh            only print the command
#   TASK=NSMC scripts/finetune.sh --num_train_epochs=1  extra flags go to run_classifier.py
#
# CPU (default): DATA_DIR (default data/, holding nsmc/, hate/ and krbert/), VOCAB
# (default $DATA_DIR/krbert/vocab_krmedium_20000.txt), BERT_CONFIG (default
# vocab/bert_config_medium.json), INIT_CHECKPOINT (the pre-trained model; without it the
# model starts from random weights), OUTPUT_DIR (default runs/finetune_<task>).
# TPU (USE_TPU=1): BUCKET and TPU_NAME are required, TPU_ZONE and GCP_PROJECT optional;
# DATA_DIR defaults to gs://$BUCKET/data, OUTPUT_DIR to gs://$BUCKET/finetune_<task> and
# INIT_CHECKPOINT to gs://$BUCKET/krbert_medium/model.ckpt-2000000 (scripts/pretrain_tpu.sh's
# last checkpoint). OUTPUT_DIR must be on gs:// (the TPU writes it; the feature cache lives
# there too).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/common.sh
source scripts/common.sh
me=${FINETUNE_SCRIPT:-$0}

task=$(echo "${TASK:-}" | tr '[:upper:]' '[:lower:]')
case "$task" in nsmc|hate) ;; *) fail "TASK=${TASK:-} is not NSMC or HATE; run as TASK=NSMC $me";; esac
BERT_CONFIG=${BERT_CONFIG:-vocab/bert_config_medium.json}

if [ "${USE_TPU:-0}" = 1 ]; then
  for var in BUCKET TPU_NAME; do
    [ -n "${!var:-}" ] || fail "$var is not set; run as USE_TPU=1 BUCKET=... TPU_NAME=... $me"
  done
  BUCKET=${BUCKET#gs://}
  BUCKET=${BUCKET%/}
  DATA_DIR=${DATA_DIR:-gs://$BUCKET/data}
  OUTPUT_DIR=${OUTPUT_DIR:-gs://$BUCKET/finetune_$task}
  INIT_CHECKPOINT=${INIT_CHECKPOINT:-gs://$BUCKET/krbert_medium/model.ckpt-2000000}
  case "$OUTPUT_DIR" in gs://*) ;; *) fail "OUTPUT_DIR=$OUTPUT_DIR must be on gs:// (the TPU writes it)";; esac
  case "$INIT_CHECKPOINT" in gs://*) ;; *) fail "INIT_CHECKPOINT=$INIT_CHECKPOINT must be on gs:// (the TPU reads it)";; esac
  device=(--use_tpu=true --tpu_name="$TPU_NAME" --num_tpu_cores=8
          --eval_batch_size=8 --predict_batch_size=8)
  if [ -n "${TPU_ZONE:-}" ]; then device+=(--tpu_zone="$TPU_ZONE"); fi
  if [ -n "${GCP_PROJECT:-}" ]; then device+=(--gcp_project="$GCP_PROJECT"); fi
else
  DATA_DIR=${DATA_DIR:-data}
  OUTPUT_DIR=${OUTPUT_DIR:-runs/finetune_$task}
  INIT_CHECKPOINT=${INIT_CHECKPOINT:-}
  device=(--use_tpu=false --eval_batch_size=64 --predict_batch_size=64)
fi
VOCAB=${VOCAB:-$DATA_DIR/krbert/vocab_krmedium_20000.txt}
case "$DATA_DIR" in
  gs://*) ;;
  *) [ -d "$DATA_DIR/$task" ] || fail "DATA_DIR=$DATA_DIR has no $task/ folder; set DATA_DIR to the folder holding nsmc/ and hate/ (scripts/download_data.sh fills data/)"
     [ -f "$VOCAB" ] || fail "VOCAB=$VOCAB not found; set VOCAB to the model's vocabulary" ;;
esac
[ -f "$BERT_CONFIG" ] || fail "BERT_CONFIG=$BERT_CONFIG not found"
if [ -z "$INIT_CHECKPOINT" ]; then
  echo "warning: INIT_CHECKPOINT is not set; the model starts from random weights" >&2
elif [ "${USE_TPU:-0}" != 1 ] && [ ! -f "$INIT_CHECKPOINT.index" ]; then
  fail "INIT_CHECKPOINT=$INIT_CHECKPOINT not found (no $INIT_CHECKPOINT.index); give the checkpoint prefix, e.g. dir/model.ckpt-2000000"
fi

python=$(job_python)
cmd=("$python" run_classifier.py
  --task_name="$TASK"
  --data_dir="$DATA_DIR/$task"
  --vocab_file="$VOCAB"
  --bert_config_file="$BERT_CONFIG"
  --output_dir="$OUTPUT_DIR"
  --do_train=true
  --do_eval=true
  --do_predict=true
  --do_lower_case=False
  --max_seq_length=128
  --train_batch_size=128
  --learning_rate=5e-05
  --num_train_epochs=5.0
  "${device[@]}")
if [ -n "$INIT_CHECKPOINT" ]; then
  cmd+=(--init_checkpoint="$INIT_CHECKPOINT")
fi
cmd+=("$@")

run_or_print "${cmd[@]}"
