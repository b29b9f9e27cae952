#!/usr/bin/env bash
# Fine-tunes KR-BERT-MEDIUM on the Korean HateSpeech task (hate: none/offensive/hate) with
# the model card's settings (macro-F1 57.91): max_seq_length 128, batch 128, learning
# rate 5e-5, 5 epochs, do_lower_case=False. Trains, evaluates on dev (eval_results.txt:
# macro-F1, per-class scores, confusion matrix) and predicts test.no_label.tsv, writing
# submission.csv for the Kaggle competition korean-hate-speech-detection.
#
#   INIT_CHECKPOINT=ckpt/model.ckpt-2000000 scripts/finetune_hate.sh        CPU
#   USE_TPU=1 BUCKET=my-bucket TPU_NAME=krbert scripts/finetune_hate.sh     Cloud TPU
#   DRY_RUN=1 scripts/finetune_hate.sh                 only print the command
#   scripts/finetune_hate.sh --hate_label=bias         extra flags go to run_classifier.py
#
# Environment variables as in scripts/finetune.sh (DATA_DIR, VOCAB, BERT_CONFIG,
# INIT_CHECKPOINT, OUTPUT_DIR, TF=2; USE_TPU=1 with BUCKET, TPU_NAME, TPU_ZONE,
# GCP_PROJECT), which runs the job.
set -euo pipefail
TASK=HATE FINETUNE_SCRIPT="$0" exec "$(dirname "$0")/finetune.sh" "$@"
