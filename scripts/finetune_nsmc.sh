#!/usr/bin/env bash
# Fine-tunes KR-BERT-MEDIUM on NSMC (movie review sentiment) with the model card's settings
# (test accuracy 90.29); see scripts/finetune.sh, which runs the job, for the environment
# variables (DATA_DIR, VOCAB, BERT_CONFIG, INIT_CHECKPOINT, OUTPUT_DIR, TF=2, DRY_RUN=1;
# USE_TPU=1 with BUCKET, TPU_NAME, TPU_ZONE, GCP_PROJECT).
#
#   INIT_CHECKPOINT=ckpt/model.ckpt-2000000 scripts/finetune_nsmc.sh        CPU
#   USE_TPU=1 BUCKET=my-bucket TPU_NAME=krbert scripts/finetune_nsmc.sh     Cloud TPU
#   scripts/finetune_nsmc.sh --num_train_epochs=1      extra flags go to run_classifier.py
set -euo pipefail
TASK=NSMC FINETUNE_SCRIPT="$0" exec "$(dirname "$0")/finetune.sh" "$@"
