#!/usr/bin/env bash
# The whole pipeline end to end on the CPU, at demo scale (3-4 minutes on 2 cores):
#
#   1. build_corpus.py              raw reviews and comments -> cleaned, split, deduplicated
#                                   sentences in shards, decontaminated against the NSMC
#                                   dev/test subsets the classifier is scored on
#   2. build_vocab.py               a WordPiece vocabulary from that corpus
#   3. create_pretraining_data.py   masked-LM + next-sentence TFRecords, one worker per shard
#   4. run_pretraining.py           pretrain a tiny BERT (2 layers, hidden 128), then evaluate
#   5. run_classifier.py            fine-tune it on an NSMC subset, evaluate, predict
#
# and a summary table (also written to $WORK/summary.md).
#
#   scripts/demo.sh                 TensorFlow 1.15 (Python 3.7, .venv)
#   TF=2 scripts/demo.sh            TensorFlow 2.15 (Python 3.11, .venv-tf2)
#
# DATA_DIR must hold corpus/ and nsmc/ (scripts/download_data.sh fills it). Unset, it is
# data/ when that holds them, else the shipped sample data/sample (6,000 NSMC training rows,
# 24,000 corpus lines; fine-tuning on 5,000 rows for 4 epochs, the same stages).
# WORK (default runs/demo) receives everything; it is started afresh on every run.
# Every stage prints the command it runs, so it can be copied and scaled up.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/common.sh
source scripts/common.sh
NEEDS=(corpus/nsmc_reviews.txt corpus/news_comments.txt nsmc/train.tsv nsmc/test.tsv)
DATA_DIR=$(pick_data_dir "${NEEDS[@]}")
require_data "$DATA_DIR" "${NEEDS[@]}"

SAMPLE=0
if [ "$(cd "$DATA_DIR" && pwd -P)" = "$(cd data/sample && pwd -P)" ]; then SAMPLE=1; fi
WORK=${WORK:-runs/demo}
VOCAB_SIZE=${VOCAB_SIZE:-8000}
CORPUS_LINES=${CORPUS_LINES:-60000}
COMMENT_LINES=${COMMENT_LINES:-2000}
PRETRAIN_STEPS=${PRETRAIN_STEPS:-400}
NSMC_TRAIN=${NSMC_TRAIN:-$(( SAMPLE ? 5000 : 20000 ))}
NSMC_DEV=${NSMC_DEV:-1000}
NSMC_TEST=${NSMC_TEST:-$(( SAMPLE ? 1000 : 2000 ))}
NSMC_EPOCHS=${NSMC_EPOCHS:-$(( SAMPLE ? 4 : 1 ))}

VENV=$(scripts/setup.sh | tail -n 1)
PY="$VENV/bin/python"
rm -rf "$WORK"
mkdir -p "$WORK"
TIMES="$WORK/stage_seconds.tsv"
: > "$TIMES"

# The NSMC subset the classifier sees: the first rows of train, the next ones as dev,
# and the first rows of test (header kept).
mkdir -p "$WORK/nsmc"
head -n $(( NSMC_TRAIN + 1 )) "$DATA_DIR/nsmc/train.tsv" > "$WORK/nsmc/train.tsv"
{ head -n 1 "$DATA_DIR/nsmc/train.tsv"
  sed -n "$(( NSMC_TRAIN + 2 )),$(( NSMC_TRAIN + NSMC_DEV + 1 ))p" "$DATA_DIR/nsmc/train.tsv"; } \
  > "$WORK/nsmc/dev.tsv"
head -n $(( NSMC_TEST + 1 )) "$DATA_DIR/nsmc/test.tsv" > "$WORK/nsmc/test.tsv"

# The raw text: a slice of the NSMC reviews (a review a line, a movie a document) and the
# news comments (a comment a line). kiwipiepy splits sentences where it is installed (the
# Python 3.11 environment); elsewhere punctuation rules do.
head -n "$CORPUS_LINES" "$DATA_DIR/corpus/nsmc_reviews.txt" > "$WORK/raw_reviews.txt"
head -n "$COMMENT_LINES" "$DATA_DIR/corpus/news_comments.txt" > "$WORK/raw_comments.txt"
SPLITTER=punct
if "$PY" -c 'import kiwipiepy' 2>/dev/null; then SPLITTER=kiwi; fi
run_stage corpus "" "$PY" build_corpus.py \
  --input_file="$WORK/raw_reviews.txt,$WORK/raw_comments.txt" \
  --output_dir="$WORK/corpus" \
  --exclude_file="$WORK/nsmc/test.tsv:document" \
  --exclude_file="$WORK/nsmc/dev.tsv:document" \
  --max_repeat=3 --mask_urls --mask_emails \
  --splitter="$SPLITTER" \
  --shard_size_mb=1 \
  --num_workers=2 \
  --noprogress

run_stage vocabulary "" "$PY" build_vocab.py \
  --input_file="$WORK/corpus/corpus-*.txt" \
  --output_file="$WORK/vocab.txt" \
  --vocab_size="$VOCAB_SIZE" \
  --input_sentence_size=200000 \
  --eval_file="$WORK/nsmc/test.tsv" --eval_column=document

# A tiny model sized to this vocabulary.
"$PY" - "$WORK/vocab.txt" vocab/bert_config_tiny.json "$WORK/bert_config.json" <<'PYEOF'
import json, sys
vocab, base, out = sys.argv[1:]
config = json.load(open(base))
config["vocab_size"] = sum(1 for _ in open(vocab, encoding="utf-8"))
json.dump(config, open(out, "w"), indent=2, sort_keys=True)
PYEOF

run_stage tfrecords "" "$PY" create_pretraining_data.py \
  --input_file="$WORK/corpus/corpus-*.txt" \
  --output_file="$WORK/tfrecords/" \
  --vocab_file="$WORK/vocab.txt" \
  --do_lower_case=False \
  --max_seq_length=128 \
  --max_predictions_per_seq=20 \
  --masked_lm_prob=0.15 \
  --dupe_factor=2 \
  --num_workers=2

run_stage pretraining "" "$PY" run_pretraining.py \
  --bert_config_file="$WORK/bert_config.json" \
  --input_file="$WORK/tfrecords/*.tfrecord" \
  --output_dir="$WORK/pretrain" \
  --do_train=true --do_eval=true \
  --max_seq_length=128 --max_predictions_per_seq=20 \
  --train_batch_size=32 --eval_batch_size=32 \
  --learning_rate=3e-4 \
  --num_train_steps="$PRETRAIN_STEPS" --num_warmup_steps=$(( PRETRAIN_STEPS / 10 )) \
  --save_checkpoints_steps="$PRETRAIN_STEPS" --iterations_per_loop=100 \
  --save_summary_steps=20 --log_every_n_steps=50 \
  --max_eval_steps=20 \
  --use_tpu=false

run_stage finetuning "" "$PY" run_classifier.py \
  --task_name=NSMC \
  --do_train=true --do_eval=true --do_predict=true \
  --data_dir="$WORK/nsmc" \
  --vocab_file="$WORK/vocab.txt" \
  --bert_config_file="$WORK/bert_config.json" \
  --init_checkpoint="$WORK/pretrain/model.ckpt-$PRETRAIN_STEPS" \
  --do_lower_case=False \
  --max_seq_length=128 \
  --train_batch_size=32 \
  --learning_rate=2e-4 \
  --num_train_epochs="$NSMC_EPOCHS" \
  --output_dir="$WORK/nsmc_out" \
  --use_tpu=false

"$PY" scripts/demo_summary.py "$WORK" | tee "$WORK/summary.md"
