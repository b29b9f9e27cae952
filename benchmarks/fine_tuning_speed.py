"""The timing shared by the fine-tuning benchmarks (bench_classifier.py, bench_ner.py):
BERT-mini's config and the training examples per second of a model_fn after a warm-up.
"""

import time

import common  # noqa: F401  (puts the project root on sys.path)
from krbert.estimator import runtime  # noqa: E402
from krbert.tf_compat import tf  # noqa: E402

MINI = {"attention_probs_dropout_prob": 0.1, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "hidden_size": 256, "initializer_range": 0.02, "intermediate_size": 1024,
        "max_position_embeddings": 512, "num_attention_heads": 4, "num_hidden_layers": 4,
        "type_vocab_size": 2, "vocab_size": 20000}
"""BERT-mini (vocab/bert_config_mini.json's shape)."""


class StepTimer(tf.train.SessionRunHook):
    """Wall time from the end of step ``warmup`` to the end of the last step."""

    def __init__(self, warmup):
        self.warmup, self.steps, self.started, self.finished = warmup, 0, None, None

    def after_run(self, run_context, run_values):
        self.steps += 1
        if self.steps == self.warmup:
            self.started = time.time()
        self.finished = time.time()


def examples_per_second(model_fn, input_fn, batch, steps, warmup, model_dir):
    """Trains ``model_fn`` on ``input_fn`` for ``warmup`` + ``steps`` steps of ``batch``
    examples on the CPU (no checkpoints, no step log); examples/s after the warm-up."""
    run_config = runtime.make_run_config(
        model_dir, use_tpu=False, save_checkpoints_steps=10 ** 6,
        config_proto=runtime.session_config(), log_step_count_steps=10 ** 9)
    estimator = runtime.make_estimator(model_fn, run_config, False, batch)
    timer = StepTimer(warmup)
    estimator.train(input_fn=input_fn, max_steps=steps + warmup, hooks=[timer])
    return (timer.steps - warmup) * batch / (timer.finished - timer.started)
