"""The span benchmarks that scripts/evaluate.sh runs (no flags).

KorQuAD 1.0 here: only its dev set is in the shared data, so it is carved by a fixed rule
(docs/korquad.md): its first 100 articles (4,055 questions) for training, the other 40
(1,719 questions) held out and scored. With the full training set
(scripts/download_data.sh) the standard setting trains on the training file and scores the
whole dev set.

Each entry has the fields of krbert.benchmarks.Benchmark (name, script, data_files relative
to DATA_DIR, flags that may use {data_dir} and {output_dir}, metrics, headline, scale) as
a dict; the scale is 1: run_squad.py writes exact match and F1 as percentages.
"""

KORQUAD_DEV = "korquad/KorQuAD_v1.0_dev.json"
KORQUAD_TRAIN = "korquad/KorQuAD_v1.0_train.json"
CARVE_TRAIN_ARTICLES = ":100"
CARVE_HELD_OUT_ARTICLES = "100:"

COMMON_FLAGS = ("--do_train=true", "--do_predict=true", "--do_lower_case=False",
                "--max_seq_length=384", "--doc_stride=128", "--max_query_length=64",
                "--output_dir={output_dir}")

BENCHMARKS = [
    {"name": "KorQuAD-carved", "script": "run_squad.py", "data_files": (KORQUAD_DEV,),
     "flags": COMMON_FLAGS + (
         "--train_file={data_dir}/" + KORQUAD_DEV,
         "--train_articles=" + CARVE_TRAIN_ARTICLES,
         "--predict_file={data_dir}/" + KORQUAD_DEV,
         "--predict_articles=" + CARVE_HELD_OUT_ARTICLES),
     "metrics": ("exact_match", "f1"), "headline": "f1", "scale": 1.0},
    {"name": "KorQuAD", "script": "run_squad.py", "data_files": (KORQUAD_TRAIN, KORQUAD_DEV),
     "flags": COMMON_FLAGS + ("--train_file={data_dir}/" + KORQUAD_TRAIN,
                              "--predict_file={data_dir}/" + KORQUAD_DEV),
     "metrics": ("exact_match", "f1"), "headline": "f1", "scale": 1.0},
]
