#!/usr/bin/env bash
# The KR-BERT-MEDIUM pretraining job at smoke-test scale on the CPU: the same flags as
# scripts/pretrain_tpu.sh (seq 128, 20 predictions, lr 1e-4) with the tiny config
# (2 layers, hidden 128) and a few steps, then an evaluation.
#
#   INPUT='/tmp/pretrain/*.tfrecord' scripts/pretrain_cpu.sh
#   INPUT=... STEPS=500 BATCH=32 OUTPUT_DIR=runs/tiny TF=2 scripts/pretrain_cpu.sh
#   INPUT=... scripts/pretrain_cpu.sh --xla_jit=true     extra flags go to run_pretraining.py
#   DRY_RUN=1 INPUT=... scripts/pretrain_cpu.sh          only print the command
#   PRECISION=float32 INPUT=... scripts/pretrain_cpu.sh  the original's float32 numerics
#
# INPUT (required): TFRecord globs from create_pretraining_data.py, written with
# --max_seq_length=$MAX_SEQ --max_predictions_per_seq=$MAX_PRED (defaults 128 and 20).
# OUTPUT_DIR (default runs/pretrain_cpu), STEPS (default 100), BATCH (default 64),
# BERT_CONFIG (default vocab/bert_config_tiny.json), TF=2 for TensorFlow 2.15.
# PRECISION: auto (default) computes in bfloat16 (--use_bfloat16) where the CPU has
# AVX512-BF16 or AMX (flags in /proc/cpuinfo, or $CPUINFO) and TensorFlow 2 runs, else
# float32; bfloat16 or float32 to choose. The script says which in one line.
# Rerunning with the same OUTPUT_DIR resumes from its last checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/common.sh
source scripts/common.sh

[ -n "${INPUT:-}" ] || fail "INPUT is not set; give the TFRecords from create_pretraining_data.py, e.g. INPUT='/tmp/pretrain/*.tfrecord' $0"
OUTPUT_DIR=${OUTPUT_DIR:-runs/pretrain_cpu}
STEPS=${STEPS:-100}
BATCH=${BATCH:-64}
MAX_SEQ=${MAX_SEQ:-128}
MAX_PRED=${MAX_PRED:-20}
BERT_CONFIG=${BERT_CONFIG:-vocab/bert_config_tiny.json}
WARMUP=$(( STEPS / 10 ))
SAVE=$(( STEPS / 4 > 0 ? STEPS / 4 : 1 ))

python=$(job_python)

# cpu_has_bf16: whether the CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX).
cpu_has_bf16() {
  grep -qwE 'avx512_bf16|amx_bf16' "${CPUINFO:-/proc/cpuinfo}" 2>/dev/null
}

# runs_tf2: whether the job's Python is the TensorFlow 2 one (Python 3.8 or later).
runs_tf2() {
  if [ "${DRY_RUN:-0}" = 1 ] && [ -z "${PYTHON:-}" ]; then
    [ "${TF:-1}" = 2 ]
  else
    "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 8) else 1)'
  fi
}

PRECISION=${PRECISION:-auto}
case "$PRECISION" in
  auto)
    if cpu_has_bf16 && runs_tf2; then
      PRECISION=bfloat16
      echo "precision: bfloat16 (this CPU has AVX512-BF16/AMX and TensorFlow 2 runs); PRECISION=float32 for the original's numerics"
    else
      PRECISION=float32
      echo "precision: float32 (bfloat16 needs AVX512-BF16/AMX and TensorFlow 2: TF=2)"
    fi ;;
  bfloat16|float32) echo "precision: $PRECISION (PRECISION=$PRECISION)" ;;
  *) fail "PRECISION=$PRECISION: use auto, bfloat16 or float32" ;;
esac
use_bf16=false
[ "$PRECISION" = bfloat16 ] && use_bf16=true

cmd=("$python" run_pretraining.py
  --bert_config_file="$BERT_CONFIG"
  --input_file="$INPUT"
  --output_dir="$OUTPUT_DIR"
  --do_train=true
  --do_eval=true
  --max_seq_length="$MAX_SEQ"
  --max_predictions_per_seq="$MAX_PRED"
  --train_batch_size="$BATCH"
  --eval_batch_size=8
  --learning_rate=1e-4
  --num_train_steps="$STEPS"
  --num_warmup_steps="$WARMUP"
  --save_checkpoints_steps="$SAVE"
  --iterations_per_loop="$SAVE"
  --max_eval_steps=20
  --log_every_n_steps=10
  --use_bfloat16="$use_bf16"
  --use_tpu=false)
cmd+=("$@")

run_or_print "${cmd[@]}"
