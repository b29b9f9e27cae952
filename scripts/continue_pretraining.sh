#!/usr/bin/env bash
# Continues pretraining a model (KR-BERT-MEDIUM's released checkpoint, a Hugging Face model
# brought in with convert_checkpoint.py --to=tf, a model grown by extend_vocab.py, or one of
# your own) on your text: a new run of run_pretraining.py from INIT_CHECKPOINT at step 0,
# with a fresh optimizer and a warm-up of WARMUP steps. The encoder and both pretraining
# heads are loaded; a head the checkpoint lacks starts afresh and is named in the log.
#
#   INPUT='/tmp/domain/*.tfrecord' INIT_CHECKPOINT=models/krbert_medium/model.ckpt-2000000 \
#     BERT_CONFIG=vocab/bert_config_medium.json scripts/continue_pretraining.sh        CPU
#   INPUT=... INIT_CHECKPOINT=runs/grown/bert_model.ckpt scripts/continue_pretraining.sh
#   USE_TPU=1 BUCKET=my-bucket INPUT='gs://my-bucket/domain/*.tfrecord' \
#     INIT_CHECKPOINT=gs://my-bucket/krbert_medium/model.ckpt-2000000 \
#     scripts/continue_pretraining.sh                                    on the TPU VM
#   DRY_RUN=1 INPUT=... INIT_CHECKPOINT=... scripts/continue_pretraining.sh   only print it
#   INPUT=... INIT_CHECKPOINT=... scripts/continue_pretraining.sh --do_eval=true   extra flags
#
# INPUT: TFRecords from create_pretraining_data.py made with the model's vocabulary (the
# grown vocab.txt after extend_vocab.py) and --max_seq_length=$MAX_SEQ
# --max_predictions_per_seq=$MAX_PRED. INIT_CHECKPOINT (required): the checkpoint prefix.
# BERT_CONFIG: its config (default: bert_config.json beside INIT_CHECKPOINT, as
# extend_vocab.py and convert_checkpoint.py write it); a config that does not match the
# checkpoint is refused. STEPS (CPU 1000, TPU 100000), BATCH (64; TRAIN_BATCH_SIZE as in
# scripts/pretrain_tpu.sh is taken too), LR (5e-5), WARMUP (STEPS/10), MAX_SEQ (128),
# MAX_PRED (20), TF=2 for TensorFlow 2.15, PYTHON. Each is checked in one line first; a
# local INIT_CHECKPOINT and BERT_CONFIG are checked here, gs:// ones by run_pretraining.py.
# CPU: OUTPUT_DIR (default runs/continue_pretraining). TPU (USE_TPU=1): run it on the
# Cloud TPU VM itself (scripts/pretrain_tpu.sh creates one and copies this checkout
# there), where it runs as that script's job does: TensorFlow 2.15 in the environment
# of TPU_VM=1 TF=2 scripts/setup.sh (or PYTHON) and --tpu_name=local, the TPU of this
# VM (TPU Nodes, the TF 1.15 way of a named remote TPU, were retired in April 2025).
# BUCKET (required); INPUT, INIT_CHECKPOINT and OUTPUT_DIR (default
# gs://$BUCKET/continue_pretraining) on gs://. On a pod slice, run it on worker 0 with
# TPU_NAME=<the slice's name> (and TPU_ZONE, GCP_PROJECT): it then drives the slice by
# name with TPU_LOAD_LIBRARY=0, as scripts/pretrain_tpu.sh does.
# Rerunning the same command after a stop resumes the continuation from the last checkpoint
# in OUTPUT_DIR (INIT_CHECKPOINT is then not read); it does not start over.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/common.sh
source scripts/common.sh

[ -n "${INPUT:-}" ] || fail "INPUT is not set; give the TFRecords from create_pretraining_data.py, e.g. INPUT='/tmp/domain/*.tfrecord' $0"
[ -n "${INIT_CHECKPOINT:-}" ] || fail "INIT_CHECKPOINT is not set; give the checkpoint to continue, e.g. INIT_CHECKPOINT=models/krbert_medium/model.ckpt-2000000 $0"
# whole_number NAME EXAMPLE: stops in one line unless $NAME is a positive whole number.
whole_number() {
  [[ "${!1}" =~ ^[1-9][0-9]{0,9}$ ]] || fail "$1=${!1} is not a positive whole number; give e.g. $1=$2"
}
if [ -z "${BATCH:-}" ] && [ -n "${TRAIN_BATCH_SIZE:-}" ]; then whole_number TRAIN_BATCH_SIZE 64; fi
BATCH=${BATCH:-${TRAIN_BATCH_SIZE:-64}}
LR=${LR:-5e-5}
MAX_SEQ=${MAX_SEQ:-128}
MAX_PRED=${MAX_PRED:-20}
whole_number BATCH 64
whole_number MAX_SEQ 128
whole_number MAX_PRED 20
[[ "$LR" =~ ^[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$ ]] || fail "LR=$LR is not a learning rate; give e.g. LR=5e-5"

# check_local_checkpoint: INIT_CHECKPOINT and BERT_CONFIG on this machine, each blamed
# for its own fault. gs:// paths are left to run_pretraining.py, which reads them through
# tf.io.gfile and names a missing one in one line.
check_local_checkpoint() {
  case "$INIT_CHECKPOINT" in gs://*) ;; *)
    if [ -d "$INIT_CHECKPOINT" ]; then
      local latest
      latest=$(find "$INIT_CHECKPOINT" -maxdepth 1 -name '*.index' | sort -V | tail -n1)
      latest=${latest%.index}
      fail "INIT_CHECKPOINT=$INIT_CHECKPOINT is a folder; give the checkpoint prefix inside it, e.g. INIT_CHECKPOINT=${latest:-${INIT_CHECKPOINT%/}/model.ckpt-N}"
    fi
    [ -f "$INIT_CHECKPOINT.index" ] || fail "INIT_CHECKPOINT=$INIT_CHECKPOINT not found (no $INIT_CHECKPOINT.index); give the checkpoint prefix, e.g. dir/bert_model.ckpt"
    ;;
  esac
  case "$BERT_CONFIG" in gs://*) ;; *)
    [ -f "$BERT_CONFIG" ] || fail "BERT_CONFIG=$BERT_CONFIG not found; give the config the checkpoint was trained with"
    ;;
  esac
}

if [ "${USE_TPU:-0}" = 1 ]; then
  [ -n "${BUCKET:-}" ] || fail "BUCKET is not set; run on the TPU VM as USE_TPU=1 BUCKET=my-bucket INPUT=gs://... INIT_CHECKPOINT=gs://... $0"
  BUCKET=${BUCKET#gs://}
  BUCKET=${BUCKET%/}
  OUTPUT_DIR=${OUTPUT_DIR:-gs://$BUCKET/continue_pretraining}
  STEPS=${STEPS:-100000}
  steps_example=100000
  for var in INPUT INIT_CHECKPOINT OUTPUT_DIR; do
    case "${!var}" in gs://*) ;; *) fail "$var=${!var} must be on gs:// (the TPU reads and writes it)";; esac
  done
  SAVE=10000
  # The TPU of this VM; a pod slice by its name from worker 0 (see the header).
  TPU_NAME=${TPU_NAME:-local}
  device=(--use_tpu=true --tpu_name="$TPU_NAME" --num_tpu_cores=8 --iterations_per_loop=1000)
  if [ "$TPU_NAME" != local ]; then
    export TPU_LOAD_LIBRARY=0
    [ -z "${TPU_ZONE:-}" ] || device+=(--tpu_zone="$TPU_ZONE")
    [ -z "${GCP_PROJECT:-}" ] || device+=(--gcp_project="$GCP_PROJECT")
  fi
else
  OUTPUT_DIR=${OUTPUT_DIR:-runs/continue_pretraining}
  STEPS=${STEPS:-1000}
  steps_example=1000
fi
whole_number STEPS "$steps_example"
BERT_CONFIG=${BERT_CONFIG:-$(dirname "${INIT_CHECKPOINT%/}")/bert_config.json}
check_local_checkpoint
if [ "${USE_TPU:-0}" != 1 ]; then
  SAVE=$(( STEPS / 4 > 0 ? STEPS / 4 : 1 ))
  device=(--use_tpu=false --iterations_per_loop="$SAVE" --log_every_n_steps=10)
fi
WARMUP=${WARMUP:-$(( STEPS / 10 ))}
[[ "$WARMUP" =~ ^(0|[1-9][0-9]{0,9})$ ]] || fail "WARMUP=$WARMUP is not a whole number of steps; give e.g. WARMUP=$(( STEPS / 10 ))"

if [ "${USE_TPU:-0}" != 1 ]; then
  python=$(job_python)
elif [ -n "${PYTHON:-}" ]; then
  python=$PYTHON
elif [ "${DRY_RUN:-0}" = 1 ]; then
  python=.venv-tpu/bin/python  # what TPU_VM=1 TF=2 scripts/setup.sh makes on the VM
else
  # TensorFlow 2.15 on the TPU VM's preinstalled runtime, as scripts/pretrain_tpu.sh.
  python=$(TPU_VM=1 TF=2 scripts/setup.sh | tail -n1)/bin/python
fi
cmd=("$python" run_pretraining.py
  --bert_config_file="$BERT_CONFIG"
  --init_checkpoint="$INIT_CHECKPOINT"
  --input_file="$INPUT"
  --output_dir="$OUTPUT_DIR"
  --do_train=true
  --max_seq_length="$MAX_SEQ"
  --max_predictions_per_seq="$MAX_PRED"
  --train_batch_size="$BATCH"
  --learning_rate="$LR"
  --num_train_steps="$STEPS"
  --num_warmup_steps="$WARMUP"
  --save_checkpoints_steps="$SAVE"
  "${device[@]}")
cmd+=("$@")

run_or_print "${cmd[@]}"
