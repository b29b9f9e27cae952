#!/usr/bin/env bash
# Prints one table of speed and memory figures measured on this machine.
#
#   scripts/benchmark.sh                 all benchmarks, TensorFlow 1.15 (.venv)
#   TF=2 scripts/benchmark.sh            the same under TensorFlow 2.15 (.venv-tf2)
#   scripts/benchmark.sh tokenizer       only benchmarks/bench_tokenizer.py
#   TF=2 scripts/benchmark.sh corpus     build_corpus.py's speed (kiwipiepy: Python 3.11 only)
#   scripts/benchmark.sh ner             run_ner.py fine-tuning (BERT-mini, KLUE-NER, seq 128)
#
#   TF=2 scripts/benchmark.sh inference  predict.py against transformers, float32 and
#                                        bfloat16 (--use_bfloat16 / torch autocast) side by
#                                        side, medians of BENCH_RUNS (3) runs
#
# Reads the real data from DATA_DIR (default data/). Run it on a quiet machine: every
# figure is wall-clock time. The BENCH_* variables of each benchmarks/bench_*.py pass
# through (e.g. BENCH_MODELS=base BENCH_DOCS=1000 for the BERT-base shape on 1,000 reviews).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$(scripts/setup.sh | tail -n 1)
export DATA_DIR=${DATA_DIR:-data}
if [ $# -gt 0 ]; then
  names=("$@")
else
  names=(tokenizer build_vocab corpus pretraining_data pretraining classifier inference ner squad)
fi
echo "Benchmarks on $(nproc) cores, $("$VENV/bin/python" -c 'import sys; from krbert import tf_compat; print("Python %d.%d, TensorFlow %s" % (sys.version_info[0], sys.version_info[1], tf_compat.TF_VERSION))' 2>/dev/null)"
echo
"$VENV/bin/python" -c 'import sys; sys.path.insert(0, "benchmarks"); import common; print(common.HEADER)'
for name in "${names[@]}"; do
  "$VENV/bin/python" "benchmarks/bench_${name}.py"
done
