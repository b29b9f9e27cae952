#!/usr/bin/env bash
# Fine-tunes one checkpoint on every benchmark whose data is present (krbert/benchmarks.py:
# KORNLI, KORSTS, KLUE_NLI, KLUE_STS, ...) with each seed, and prints one table: task,
# metric, dev and test as mean ± sd over the seeds (x100). Also written to WORK/results.txt.
#
#   INIT_CHECKPOINT=runs/reproduce_small/pretrain/model.ckpt-N scripts/evaluate.sh
#   scripts/evaluate.sh                                  random weights (no INIT_CHECKPOINT)
#   TASKS="KORNLI KORSTS" SEEDS="1 2 3" TF=2 scripts/evaluate.sh
#   scripts/evaluate.sh --num_train_epochs=1             extra flags go to every run
#
# DATA_DIR (default data/ when it holds kornli/, else the shipped data/sample), WORK
# (default runs/evaluate; one folder per task and seed, kept and reused when finished),
# BERT_CONFIG (default vocab/bert_config_mini.json), VOCAB (default vocab/vocab_20000.txt),
# DO_LOWER_CASE (default False), SEEDS (default "1 2 3"), TASKS (default: all).
# MAX_SEQ_LENGTH, BATCH, LEARNING_RATE and EPOCHS, when set, go to every task; unset, each
# task keeps its own (the classifier's 128 / 32 / 5e-5 / 3, KorQuAD's seq 384, ...).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/common.sh
source scripts/common.sh

if [ -z "${DATA_DIR:-}" ]; then
  if [ -d data/kornli ]; then DATA_DIR=data; else DATA_DIR=data/sample; fi
fi
[ -d "$DATA_DIR" ] || fail "DATA_DIR=$DATA_DIR is not a folder; set it to the data (data/README.md)"
INIT_CHECKPOINT=${INIT_CHECKPOINT:-}
BERT_CONFIG=${BERT_CONFIG:-vocab/bert_config_mini.json}
VOCAB=${VOCAB:-vocab/vocab_20000.txt}
[ -f "$BERT_CONFIG" ] || fail "BERT_CONFIG=$BERT_CONFIG not found; set it to the model's config"
[ -f "$VOCAB" ] || fail "VOCAB=$VOCAB not found; set it to the model's vocabulary"
python=$(job_python)
if [ "${DRY_RUN:-0}" = 1 ]; then
  echo "DATA_DIR=$DATA_DIR INIT_CHECKPOINT=${INIT_CHECKPOINT:-none} TASKS=${TASKS:-all} SEEDS=${SEEDS:-1 2 3}"
  exit 0
fi
exec "$python" scripts/evaluate_tasks.py --data_dir="$DATA_DIR" --work="${WORK:-runs/evaluate}" \
  --init_checkpoint="$INIT_CHECKPOINT" --bert_config="$BERT_CONFIG" --vocab="$VOCAB" \
  --do_lower_case="${DO_LOWER_CASE:-False}" --seeds="${SEEDS:-1 2 3}" --tasks="${TASKS:-}" \
  --python="$python" --max_seq_length="${MAX_SEQ_LENGTH:-}" --train_batch_size="${BATCH:-}" \
  --learning_rate="${LEARNING_RATE:-}" --num_train_epochs="${EPOCHS:-}" -- "$@"
