"""Fine-tuning speed of run_ner.py on the CPU: BERT-mini on KLUE-NER sentences, seq 128.

One row per TensorFlow version: sentences per second of training (batches of 32, each
padded to its longest sentence, run_ner.py's CPU path), on the training part of the
carved KLUE-NER dev file (docs/ner.md). BERT-mini (4 layers, hidden 256) from random
initialisation; the first BENCH_WARMUP steps are left out.

    DATA_DIR=../shared/data python benchmarks/bench_ner.py
    BENCH_STEPS=60 ...   more measured steps (default 40)
"""

import json
import os
import shutil
import tempfile
import time

import common  # noqa: F401  (puts the project root on sys.path)
import modeling  # noqa: E402
import run_ner  # noqa: E402
import tokenization  # noqa: E402
from krbert.estimator import runtime  # noqa: E402
from krbert.tagging import features, klue  # noqa: E402
from krbert.tf_compat import TF_VERSION, tf  # noqa: E402

BATCH = 32
SEQ = 128
MINI = {"attention_probs_dropout_prob": 0.1, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "hidden_size": 256, "initializer_range": 0.02, "intermediate_size": 1024,
        "max_position_embeddings": 512, "num_attention_heads": 4, "num_hidden_layers": 4,
        "type_vocab_size": 2, "vocab_size": 20000}
"""BERT-mini, as benchmarks/bench_classifier.py (which defines run_classifier's flags)."""


class StepTimer(tf.train.SessionRunHook):
    """Wall time from the end of step ``warmup`` to the end of the last step."""

    def __init__(self, warmup):
        self.warmup, self.steps, self.started, self.finished = warmup, 0, None, None

    def after_run(self, run_context, run_values):
        self.steps += 1
        if self.steps == self.warmup:
            self.started = time.time()
        self.finished = time.time()


def train_speed(record_path, bert_config, steps, warmup, work_dir):
    """Training sentences per second after ``warmup`` steps."""
    model_fn = run_ner.model_fn_builder(bert_config, None, 1e-4, steps + warmup, 0, False,
                                        log_every_n_steps=10 ** 6)
    run_config = runtime.make_run_config(
        os.path.join(work_dir, "model"), use_tpu=False, save_checkpoints_steps=10 ** 6,
        config_proto=runtime.session_config(), log_step_count_steps=10 ** 9)
    estimator = runtime.make_estimator(model_fn, run_config, False, BATCH)
    timer = StepTimer(warmup)
    estimator.train(input_fn=features.make_input_fn(record_path, SEQ, is_training=True,
                                                    pad_to_max=False),
                    max_steps=steps + warmup, hooks=[timer])
    return (timer.steps - warmup) * BATCH / (timer.finished - timer.started)


def main():
    data = common.data_dir()
    steps = int(os.environ.get("BENCH_STEPS", "40"))
    warmup = int(os.environ.get("BENCH_WARMUP", "5"))
    work_dir = tempfile.mkdtemp(prefix="bench_ner_")
    try:
        config_path = os.path.join(work_dir, "bert_config_mini.json")
        with open(config_path, "w") as handle:
            json.dump(MINI, handle)
        bert_config = modeling.BertConfig.from_json_file(config_path)
        vocab = os.path.join(data, "krbert", "vocab_krmedium_20000.txt")
        sentences, _ = klue.read_splits(os.path.join(data, "klue"), ["train"])["train"]
        tokenizer = tokenization.FullTokenizer(vocab, do_lower_case=False)
        _, records, stats = features.build_features(tokenizer, sentences, SEQ)
        record_path = os.path.join(work_dir, "train.tf_record")
        features.write_records(record_path, records)
        speed = train_speed(record_path, bert_config, steps, warmup, work_dir)
        common.row("ner train", "BERT-mini, KLUE-NER carved train (%d sentences, mean %.1f "
                   "tokens), seq %d, batch %d, TF %s" % (
                       len(sentences), stats["num_tokens"] / len(sentences), SEQ, BATCH,
                       TF_VERSION), speed, "examples/s")
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    main()
