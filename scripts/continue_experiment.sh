#!/usr/bin/env bash
# Does continuing pretraining on the task's domain help, and do new domain tokens help more?
# A CPU-sized answer (about 75 minutes on 2 cores):
#
#   vocab      the texts: the first BASE_LINES lines of the NSMC reviews; the news comments
#              minus the last HOLDOUT lines and the held-out last HOLDOUT lines (a blank
#              line every DOC_LINES comments, so next-sentence pairs exist); then a
#              vocabulary of VOCAB_SIZE tokens learned from all NSMC reviews alone
#              (build_vocab.py), so the news comments hold words it splits finely
#   data       masked-LM + NSP TFRecords (seq SEQ, PREDS predictions) of the three texts,
#              with the NSMC vocabulary
#   base       BERT-mini pretrained on the NSMC reviews for BASE_STEPS steps
#   extend     extend_vocab.py picks NEW_TOKENS tokens from the news comments (training part)
#              and grows the base model; the news TFRecords are made again with its vocabulary
#   continue   continuation on the news comments for CONT_STEPS steps
#              (scripts/continue_pretraining.sh): from the base model ("cont") and from the
#              grown one ("cont_new"), same settings and seed
#   mlm        masked-LM accuracy on the held-out news comments: base and cont with the NSMC
#              vocabulary (the same examples), cont_new with its own vocabulary
#   finetune   HATE (train, dev macro-F1) from random weights ("scratch"), base, cont and
#              cont_new, once per seed of SEEDS; two models' runs at a time, in the
#              background; scratch starts once the data exist, base once it is trained
#   summary    results.md: mean +- sample sd over the seeds, MLM accuracies, the report
#
#   DATA_DIR=../shared/data nohup scripts/continue_experiment.sh > /tmp/continue_experiment.log 2>&1 &
#   DATA_DIR=... scripts/continue_experiment.sh finetune summary      only these stages
#   RESUME=1 DATA_DIR=... scripts/continue_experiment.sh              keep what finished
#
# Environment: DATA_DIR (default data/), WORK (default runs/continue_experiment), TF
# (default 2), VOCAB_SIZE (8000), MAX_ALPHABET (2000), BASE_LINES (300000), HOLDOUT (3000),
# DOC_LINES (8), SEQ (64), PREDS (10), BASE_STEPS (1500), BASE_LR (2e-4), CONT_STEPS (300),
# CONT_LR (1e-4), BATCH (32), NEW_TOKENS (500), SEEDS ("1 2 3 4 5"), FT_EPOCHS (2), FT_LR
# (1e-4), FT_BATCH (32), FT_MODELS ("scratch base cont cont_new"), MLM_EVAL_STEPS (25,
# batch 64), BERT_CONFIG
# (vocab/bert_config_mini.json), RESUME (1: keep finished stages and fine-tuning runs;
# pretraining always resumes from its own checkpoints).
# A quick check of every stage on the shipped sample (a few minutes):
#   DATA_DIR=data/sample WORK=runs/continue_dry BERT_CONFIG=vocab/bert_config_tiny.json \
#     VOCAB_SIZE=3000 MAX_ALPHABET=1000 HOLDOUT=200 BASE_STEPS=20 CONT_STEPS=10 \
#     NEW_TOKENS=50 SEEDS="1 2" FT_EPOCHS=1 MLM_EVAL_STEPS=2 scripts/continue_experiment.sh
set -euo pipefail
cd "$(dirname "$0")/.."

export TF=${TF:-2}
DATA_DIR=${DATA_DIR:-data}
WORK=${WORK:-runs/continue_experiment}
VOCAB_SIZE=${VOCAB_SIZE:-8000}
MAX_ALPHABET=${MAX_ALPHABET:-2000}
BASE_LINES=${BASE_LINES:-300000}
HOLDOUT=${HOLDOUT:-3000}
DOC_LINES=${DOC_LINES:-8}
SEQ=${SEQ:-64}
PREDS=${PREDS:-10}
BASE_STEPS=${BASE_STEPS:-1500}
BASE_LR=${BASE_LR:-2e-4}
CONT_STEPS=${CONT_STEPS:-300}
CONT_LR=${CONT_LR:-1e-4}
BATCH=${BATCH:-32}
NEW_TOKENS=${NEW_TOKENS:-500}
SEEDS=${SEEDS:-1 2 3 4 5}
FT_EPOCHS=${FT_EPOCHS:-2}
FT_LR=${FT_LR:-1e-4}
FT_MODELS=${FT_MODELS:-scratch base cont cont_new}
FT_BATCH=${FT_BATCH:-32}
MLM_EVAL_STEPS=${MLM_EVAL_STEPS:-25}
CONFIG=${BERT_CONFIG:-vocab/bert_config_mini.json}
RESUME=${RESUME:-0}

stages=("$@")
if [ ${#stages[@]} -eq 0 ]; then
  stages=(vocab data base extend continue mlm finetune summary)
fi
for stage in "${stages[@]}"; do
  case "$stage" in vocab|data|base|extend|continue|mlm|finetune|summary) ;;
    *) echo "error: unknown stage '$stage'; use vocab, data, base, extend, continue, mlm," \
            "finetune and/or summary" >&2
       exit 1 ;;
  esac
done

# shellcheck source=scripts/common.sh
source scripts/common.sh
require_data "$DATA_DIR" corpus/nsmc_reviews.txt corpus/news_comments.txt hate/train.tsv \
  hate/dev.tsv

VENV=$(scripts/setup.sh | tail -n 1)
PY="$VENV/bin/python"
export PYTHON=$PY  # scripts/continue_pretraining.sh runs the same Python
DATA_ABS=$(cd "$DATA_DIR" && pwd)
mkdir -p "$WORK/logs"
TIMES="$WORK/stage_seconds.tsv"
touch "$TIMES"
VOCAB="$WORK/vocab/vocab.txt"
GROWN="$WORK/grown"

# done_before FILE NAME: true (and says so) when RESUME=1 and FILE exists.
done_before() {
  if [ "$RESUME" = 1 ] && [ -e "$1" ]; then
    echo "=== $2: finished before, kept (RESUME=1)"
    return 0
  fi
  return 1
}

# pretraining_data NAME INPUT VOCAB DUPE: TFRecords of INPUT in $WORK/tfrecords/NAME/.
pretraining_data() {
  local name=$1 input=$2 vocab=$3 dupe=$4
  rm -rf "$WORK/tfrecords/$name"
  run_stage "tfrecords_$name" "$WORK/logs/tfrecords_$name.log" "$PY" create_pretraining_data.py \
    --input_file="$input" \
    --output_file="$WORK/tfrecords/$name/" \
    --vocab_file="$vocab" \
    --do_lower_case=False \
    --max_seq_length="$SEQ" \
    --max_predictions_per_seq="$PREDS" \
    --dupe_factor="$dupe" \
    --num_workers=1
}

stage_vocab() {
  done_before "$VOCAB" vocab && return
  split_text
  mkdir -p "$WORK/vocab"
  run_stage vocab "$WORK/logs/vocab.log" "$PY" build_vocab.py \
    --input_file="$DATA_DIR/corpus/nsmc_reviews.txt" \
    --output_file="$VOCAB" \
    --vocab_size="$VOCAB_SIZE" \
    --max_alphabet="$MAX_ALPHABET" \
    --eval_file="$WORK/text/news_heldout.txt"
  "$PY" -c 'import json, sys; json.dump(dict(json.load(open(sys.argv[1])),
    vocab_size=int(sys.argv[2])), open(sys.argv[3], "w"), indent=2)' \
    "$CONFIG" "$VOCAB_SIZE" "$WORK/vocab/bert_config.json"
}

split_text() {
  local news=$DATA_DIR/corpus/news_comments.txt total
  mkdir -p "$WORK/text"
  head -n "$BASE_LINES" "$DATA_DIR/corpus/nsmc_reviews.txt" > "$WORK/text/nsmc_base.txt"
  total=$(wc -l < "$news")
  head -n $(( total - HOLDOUT )) "$news" \
    | awk -v n="$DOC_LINES" '{ print } NR % n == 0 { print "" }' > "$WORK/text/news_train.txt"
  tail -n "$HOLDOUT" "$news" \
    | awk -v n="$DOC_LINES" '{ print } NR % n == 0 { print "" }' > "$WORK/text/news_heldout.txt"
}

stage_data() {
  done_before "$WORK/tfrecords/news_heldout" data && return
  pretraining_data nsmc "$WORK/text/nsmc_base.txt" "$VOCAB" 1
  pretraining_data news "$WORK/text/news_train.txt" "$VOCAB" 2
  pretraining_data news_heldout "$WORK/text/news_heldout.txt" "$VOCAB" 2
}

stage_base() {
  run_stage base "$WORK/base/train.log" "$PY" run_pretraining.py \
    --bert_config_file="$WORK/vocab/bert_config.json" \
    --input_file="$WORK/tfrecords/nsmc/*.tfrecord" \
    --output_dir="$WORK/base" \
    --do_train=true --do_eval=false \
    --max_seq_length="$SEQ" --max_predictions_per_seq="$PREDS" \
    --train_batch_size="$BATCH" \
    --learning_rate="$BASE_LR" \
    --num_train_steps="$BASE_STEPS" --num_warmup_steps=$(( BASE_STEPS / 10 )) \
    --save_checkpoints_steps=500 --keep_checkpoint_max=2 \
    --iterations_per_loop=500 --save_summary_steps=50 --log_every_n_steps=50 \
    --seed=12345 --use_tpu=false
}

stage_extend() {
  if ! done_before "$GROWN/bert_model.ckpt.index" extend; then
    rm -rf "$GROWN"
    run_stage extend "$WORK/logs/extend.log" "$PY" extend_vocab.py \
      --vocab_file="$VOCAB" \
      --bert_config_file="$WORK/vocab/bert_config.json" \
      --init_checkpoint="$WORK/base/model.ckpt-$BASE_STEPS" \
      --input_file="$WORK/text/news_train.txt" \
      --num_new_tokens="$NEW_TOKENS" --do_lower_case=False \
      --eval_file="$WORK/text/news_heldout.txt" \
      --output_dir="$GROWN"
  fi
  done_before "$WORK/tfrecords/news_new_heldout" "tfrecords (grown vocabulary)" && return
  pretraining_data news_new "$WORK/text/news_train.txt" "$GROWN/vocab.txt" 2
  pretraining_data news_new_heldout "$WORK/text/news_heldout.txt" "$GROWN/vocab.txt" 2
}

# continuation NAME INIT_CHECKPOINT CONFIG DATA: $WORK/NAME from INIT_CHECKPOINT on DATA.
continuation() {
  local name=$1 init=$2 config=$3 data=$4
  INPUT="$WORK/tfrecords/$data/*.tfrecord" INIT_CHECKPOINT="$init" BERT_CONFIG="$config" \
    OUTPUT_DIR="$WORK/$name" STEPS="$CONT_STEPS" BATCH="$BATCH" LR="$CONT_LR" \
    MAX_SEQ="$SEQ" MAX_PRED="$PREDS" \
    run_stage "$name" "$WORK/$name/train.log" scripts/continue_pretraining.sh \
    --do_eval=false --seed=12345 --keep_checkpoint_max=2 --save_summary_steps=50 \
    --log_every_n_steps=50
}

stage_continue() {
  continuation cont "$WORK/base/model.ckpt-$BASE_STEPS" "$WORK/vocab/bert_config.json" news
  continuation cont_new "$GROWN/bert_model.ckpt" "$GROWN/bert_config.json" news_new
}

# mlm_eval NAME CHECKPOINT CONFIG DATA: masked-LM accuracy of CHECKPOINT on DATA, written
# to $WORK/mlm/NAME/eval_results.txt.
mlm_eval() {
  local name=$1 ckpt=$2 config=$3 data=$4
  done_before "$WORK/mlm/$name/eval_results.txt" "mlm_$name" && return
  rm -rf "$WORK/mlm/$name"
  run_stage "mlm_$name" "$WORK/logs/mlm_$name.log" "$PY" run_pretraining.py \
    --bert_config_file="$config" \
    --input_file="$WORK/tfrecords/$data/*.tfrecord" \
    --init_checkpoint="$ckpt" \
    --output_dir="$WORK/mlm/$name" \
    --do_train=false --do_eval=true \
    --max_seq_length="$SEQ" --max_predictions_per_seq="$PREDS" \
    --eval_batch_size=64 --max_eval_steps="$MLM_EVAL_STEPS" --use_tpu=false
}

stage_mlm() {
  mlm_eval base "$WORK/base/model.ckpt-$BASE_STEPS" "$WORK/vocab/bert_config.json" news_heldout
  mlm_eval cont "$WORK/cont/model.ckpt-$CONT_STEPS" "$WORK/vocab/bert_config.json" news_heldout
  mlm_eval cont_new "$WORK/cont_new/model.ckpt-$CONT_STEPS" "$GROWN/bert_config.json" \
    news_new_heldout
}

finetune() {  # name checkpoint ("" for random weights) vocab config seed
  local name=$1 ckpt=$2 vocab=$3 config=$4 seed=$5 start=()
  if [ -n "$ckpt" ]; then start=(--init_checkpoint="$ckpt"); fi
  done_before "$WORK/finetune/$name/eval_results.txt" "$name" && return
  rm -rf "$WORK/finetune/$name"
  run_stage "$name" "$WORK/finetune/$name.log" "$PY" run_classifier.py \
    --task_name=HATE \
    --do_train=true --do_eval=true --eval_split=dev \
    --data_dir="$WORK/tasks/hate" \
    --vocab_file="$vocab" \
    --bert_config_file="$config" \
    "${start[@]}" \
    --do_lower_case=False \
    --max_seq_length="$SEQ" \
    --train_batch_size="$FT_BATCH" --eval_batch_size=128 \
    --learning_rate="$FT_LR" \
    --num_train_epochs="$FT_EPOCHS" \
    --cache_dir="$WORK/feature_cache" \
    --seed="$seed" \
    --output_dir="$WORK/finetune/$name" \
    --use_tpu=false
}

finetune_model() {  # init (scratch|base|cont|cont_new)
  local init=$1 ckpt="" vocab=$VOCAB config=$WORK/vocab/bert_config.json seed
  case "$init" in
    scratch) ;;
    base) ckpt=$WORK/base/model.ckpt-$BASE_STEPS ;;
    cont) ckpt=$WORK/cont/model.ckpt-$CONT_STEPS ;;
    cont_new) ckpt=$WORK/cont_new/model.ckpt-$CONT_STEPS vocab=$GROWN/vocab.txt
              config=$GROWN/bert_config.json ;;
  esac
  mkdir -p "$WORK/tasks/hate"
  for split in train dev; do
    ln -sf "$DATA_ABS/hate/$split.tsv" "$WORK/tasks/hate/$split.tsv"
  done
  for seed in $SEEDS; do
    finetune "hate_${init}_seed$seed" "$ckpt" "$vocab" "$config" "$seed"
  done
}

# in_background MODEL: fine-tunes MODEL's seeds in the background (log
# $WORK/logs/finetune_MODEL.log) and adds the job to $jobs.
jobs=()
in_background() {
  finetune_model "$1" > "$WORK/logs/finetune_$1.log" 2>&1 &
  jobs+=($!)
  echo "=== finetune $1: started in the background (log $WORK/logs/finetune_$1.log)"
}

# Two fine-tuning streams at a time: each model's seeds run one after the other.
stage_finetune() {
  local model job
  for model in $FT_MODELS; do
    if [[ " ${started[*]} " == *" $model "* ]]; then continue; fi
    in_background "$model"
    if [ ${#jobs[@]} -ge 2 ]; then wait "${jobs[0]}"; jobs=("${jobs[@]:1}"); fi
  done
  for job in "${jobs[@]}"; do wait "$job"; done
  jobs=()
}

stage_summary() {
  "$PY" scripts/continue_summary.py "$WORK" | tee "$WORK/results.md"
}

# With the finetune stage in the same call, the runs from random weights start in the
# background once the data exist, and those of the base model once it is trained, beside
# the stages that follow.
started=()
for stage in "${stages[@]}"; do
  "stage_$stage"
  if [[ " ${stages[*]} " == *" finetune "* ]]; then
    for model in scratch base; do
      if { [ "$stage" = data ] && [ $model = scratch ]; } ||
         { [ "$stage" = base ] && [ $model = base ]; }; then
        if [[ " $FT_MODELS " == *" $model "* ]]; then in_background $model; started+=("$model"); fi
      fi
    done
  fi
done
