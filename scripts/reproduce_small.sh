#!/usr/bin/env bash
# Does pretraining with this pipeline help fine-tuning? A CPU-sized answer:
#
#   data       shard the shared corpus, write masked-LM + NSP TFRecords (seq 64) with the
#              shipped vocabulary vocab/vocab_20000.txt
#   pretrain   BERT-mini (vocab/bert_config_mini.json) for PRETRAIN_STEPS steps; the
#              training MLM accuracy is logged every 100 steps (pretrain/train.log and
#              TensorBoard), the final checkpoint is evaluated (pretrain/eval_results.txt)
#   finetune   NSMC with 10% (the first 13,000 rows) and HATE once per seed of SEEDS, and
#              NSMC with 100% of train once per seed of NSMC_100_SEEDS, each from the
#              pretrained checkpoint and from random weights, same settings; the seed
#              (run_classifier.py --seed) fixes the classifier's initialisation, dropout and
#              shuffling. NSMC is scored on the 50,000-row test split, HATE on dev (macro-F1)
#   summary    the results table (results.md: mean +- standard deviation over the seeds and
#              the difference of the means) and the MLM accuracy curve (mlm_curve.tsv)
#
#   scripts/reproduce_small.sh                        every stage (about 3 hours on 2 cores)
#   scripts/reproduce_small.sh finetune summary       only these stages
#   nohup scripts/reproduce_small.sh > runs/reproduce_small.log 2>&1 &     in the background
#
# Environment: TF (default 2: TensorFlow 2.15 is the faster one on the CPU), DATA_DIR
# (default data/), WORK (default runs/reproduce_small), PRETRAIN_STEPS, PRETRAIN_LR,
# PRETRAIN_BATCH, FINETUNE_LR, FINETUNE_BATCH, SEQ, INITS (default "pretrained scratch";
# INITS=scratch runs the from-scratch fine-tuning alone, e.g. while pretraining runs),
# SEEDS (default "1 2 3"), NSMC_100_SEEDS (default "1"; "" leaves NSMC 100% out),
# NSMC_SMALL_ROWS (13000), BERT_CONFIG (vocab/bert_config_mini.json), RESUME (1: keep the
# fine-tuning runs that finished, those with an eval_results.txt, instead of redoing them).
# A quick check of every stage on the shipped sample (a few minutes):
#   DATA_DIR=data/sample WORK=runs/reproduce_dry BERT_CONFIG=vocab/bert_config_tiny.json \
#     PRETRAIN_STEPS=20 NSMC_SMALL_ROWS=300 SEEDS="1 2" NSMC_100_SEEDS= \
#     scripts/reproduce_small.sh
# Every command is printed before it runs.
set -euo pipefail
cd "$(dirname "$0")/.."

export TF=${TF:-2}
DATA_DIR=${DATA_DIR:-data}
WORK=${WORK:-runs/reproduce_small}
SEQ=${SEQ:-64}
PREDS=${PREDS:-10}
DUPE_FACTOR=${DUPE_FACTOR:-3}
PRETRAIN_STEPS=${PRETRAIN_STEPS:-8000}
PRETRAIN_BATCH=${PRETRAIN_BATCH:-64}
PRETRAIN_LR=${PRETRAIN_LR:-5e-4}
FINETUNE_LR=${FINETUNE_LR:-1e-4}
FINETUNE_BATCH=${FINETUNE_BATCH:-32}
NSMC_SMALL_ROWS=${NSMC_SMALL_ROWS:-13000}
INITS=${INITS:-pretrained scratch}
SEEDS=${SEEDS:-1 2 3}
RESUME=${RESUME:-0}
NSMC_100_SEEDS=${NSMC_100_SEEDS-1}
VOCAB=vocab/vocab_20000.txt
CONFIG=${BERT_CONFIG:-vocab/bert_config_mini.json}

stages=("$@")
if [ ${#stages[@]} -eq 0 ]; then stages=(data pretrain finetune summary); fi
for stage in "${stages[@]}"; do
  case "$stage" in data|pretrain|finetune|summary) ;;
    *) echo "error: unknown stage '$stage'; use data, pretrain, finetune and/or summary" >&2
       exit 1 ;;
  esac
done

# shellcheck source=scripts/common.sh
source scripts/common.sh
require_data "$DATA_DIR" corpus/nsmc_reviews.txt corpus/news_comments.txt nsmc/train.tsv \
  nsmc/test.tsv hate/train.tsv hate/dev.tsv

VENV=$(scripts/setup.sh | tail -n 1)
PY="$VENV/bin/python"
DATA_ABS=$(cd "$DATA_DIR" && pwd)
mkdir -p "$WORK"
TIMES="$WORK/stage_seconds.tsv"
touch "$TIMES"

stage_data() {
  rm -rf "$WORK/shards" "$WORK/tfrecords"
  run_stage shards "$WORK/logs/shards.log" "$PY" shard_corpus.py \
    --input_file="$DATA_DIR/corpus/nsmc_reviews.txt,$DATA_DIR/corpus/news_comments.txt" \
    --output_prefix="$WORK/shards/corpus" \
    --num_shards=8
  run_stage tfrecords "$WORK/logs/tfrecords.log" "$PY" create_pretraining_data.py \
    --input_file="$WORK/shards/corpus*.txt" \
    --output_file="$WORK/tfrecords/" \
    --vocab_file="$VOCAB" \
    --do_lower_case=False \
    --max_seq_length="$SEQ" \
    --max_predictions_per_seq="$PREDS" \
    --masked_lm_prob=0.15 \
    --dupe_factor="$DUPE_FACTOR" \
    --num_workers=2
}

stage_pretrain() {
  run_stage pretraining "$WORK/pretrain/train.log" "$PY" run_pretraining.py \
    --bert_config_file="$CONFIG" \
    --input_file="$WORK/tfrecords/*.tfrecord" \
    --output_dir="$WORK/pretrain" \
    --do_train=true --do_eval=true \
    --max_seq_length="$SEQ" --max_predictions_per_seq="$PREDS" \
    --train_batch_size="$PRETRAIN_BATCH" --eval_batch_size=64 \
    --learning_rate="$PRETRAIN_LR" \
    --num_train_steps="$PRETRAIN_STEPS" --num_warmup_steps=$(( PRETRAIN_STEPS / 20 )) \
    --save_checkpoints_steps=1000 --keep_checkpoint_max=2 \
    --iterations_per_loop=1000 --save_summary_steps=100 --log_every_n_steps=100 \
    --max_eval_steps=100 --seed=12345 \
    --use_tpu=false
}

# Task folders: links to the shared files, the NSMC 10% train split cut from the top.
make_task_dirs() {
  mkdir -p "$WORK/tasks/nsmc_100" "$WORK/tasks/nsmc_10" "$WORK/tasks/hate"
  for split in train test; do
    ln -sf "$DATA_ABS/nsmc/$split.tsv" "$WORK/tasks/nsmc_100/$split.tsv"
  done
  head -n $(( NSMC_SMALL_ROWS + 1 )) "$DATA_DIR/nsmc/train.tsv" > "$WORK/tasks/nsmc_10/train.tsv"
  ln -sf "$DATA_ABS/nsmc/test.tsv" "$WORK/tasks/nsmc_10/test.tsv"
  for split in train dev; do
    ln -sf "$DATA_ABS/hate/$split.tsv" "$WORK/tasks/hate/$split.tsv"
  done
}

finetune() {  # name task data epochs eval_split init(pretrained|scratch) seed
  local name=$1 task=$2 data=$3 epochs=$4 split=$5 init=$6 seed=$7 ckpt=()
  if [ "$init" = pretrained ]; then
    ckpt=(--init_checkpoint="$WORK/pretrain/model.ckpt-$PRETRAIN_STEPS")
  fi
  if [ "$RESUME" = 1 ] && [ -f "$WORK/finetune/$name/eval_results.txt" ]; then
    echo "=== $name: finished before, kept (RESUME=1)"
    return
  fi
  rm -rf "$WORK/finetune/$name"
  run_stage "$name" "$WORK/finetune/$name.log" "$PY" run_classifier.py \
    --task_name="$task" \
    --do_train=true --do_eval=true --eval_split="$split" \
    --data_dir="$WORK/tasks/$data" \
    --vocab_file="$VOCAB" \
    --bert_config_file="$CONFIG" \
    "${ckpt[@]}" \
    --do_lower_case=False \
    --max_seq_length="$SEQ" \
    --train_batch_size="$FINETUNE_BATCH" --eval_batch_size=128 \
    --learning_rate="$FINETUNE_LR" \
    --num_train_epochs="$epochs" \
    --cache_dir="$WORK/feature_cache" \
    --seed="$seed" \
    --output_dir="$WORK/finetune/$name" \
    --use_tpu=false
}

stage_finetune() {
  if [[ " $INITS " == *" pretrained "* ]] \
      && [ ! -f "$WORK/pretrain/model.ckpt-$PRETRAIN_STEPS.index" ]; then
    echo "error: $WORK/pretrain/model.ckpt-$PRETRAIN_STEPS not found; run the pretrain stage" \
         "first (or set PRETRAIN_STEPS to the step of its last checkpoint)" >&2
    exit 1
  fi
  make_task_dirs
  local data task epochs split seeds init seed
  for run in "nsmc_10 NSMC 3 test" "hate HATE 3 dev" "nsmc_100 NSMC 1 test"; do
    read -r data task epochs split <<< "$run"
    seeds=$SEEDS
    if [ "$data" = nsmc_100 ]; then seeds=$NSMC_100_SEEDS; fi
    for seed in $seeds; do
      for init in $INITS; do
        finetune "${data}_${init}_seed$seed" "$task" "$data" "$epochs" "$split" "$init" "$seed"
      done
    done
  done
}

stage_summary() {
  "$PY" scripts/reproduce_summary.py "$WORK" | tee "$WORK/results.md"
}

for stage in "${stages[@]}"; do
  "stage_$stage"
done
