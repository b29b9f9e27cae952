"""The tagging tasks' entries in the fine-tuning benchmark list (scripts/evaluate.sh).

``BENCHMARKS``: one entry per tagging benchmark, with the fields of
``krbert.benchmarks.Benchmark`` (name, script, data_files, flags, metrics, headline, scale)
as a dict: ``data_files`` relative to DATA_DIR, ``flags`` may use
{data_dir} and {output_dir}, ``headline`` the key shown first; ``scale`` is 1: run_ner.py
writes percentages already. Without ``klue-ner-v1.1_train.tsv`` run_ner.py carves the dev
file (docs/ner.md), so only the dev file is required.
"""

from krbert.tagging import klue

BENCHMARKS = [
    {"name": "KLUE-NER",
     "script": "run_ner.py",
     "data_files": ("klue/" + klue.FILES["dev"],),
     "flags": ("--data_dir={data_dir}/klue", "--output_dir={output_dir}", "--do_train=true",
               "--do_eval=true", "--max_seq_length=128", "--train_batch_size=32",
               "--learning_rate=5e-5", "--num_train_epochs=3"),
     "metrics": ("entity_f1", "char_macro_f1"),
     "headline": "entity_f1", "scale": 1.0},
]
