"""convert_checkpoint.py with run_ner.py's tagging head: to transformers'
BertForTokenClassification (logits within 1e-4 of run_ner's graph) and back (the same
values)."""

import json
import os

import numpy as np

from test_convert_checkpoint import TOLERANCE, convert, hf_packages, needs_safetensors, padded
from test_run_ner import TINY, VOCAB, trained  # noqa: F401  (fixture)
from krbert.bert_config import load_bert_config
from krbert.tagging import klue, serving
from krbert.tf_compat import tf


def tagger_logits(checkpoint, batch):
    """run_ner's tagger logits float32 [B, S, 13] for (ids, mask, segments)."""
    session, inputs, outputs = serving.restore_tagger(load_bert_config(TINY), checkpoint, TINY)
    try:
        return session.run(outputs["logits"], dict(zip(
            [inputs[n] for n in ("input_ids", "input_mask", "segment_ids")], batch)))
    finally:
        session.close()


@needs_safetensors
def test_tagger_to_token_classification_and_back(trained, tmp_path):  # noqa: F811
    _, output_dir, _ = trained
    checkpoint = tf.train.latest_checkpoint(output_dir)
    hf_dir = str(tmp_path / "hf")
    _, log = convert(["--to=hf", "--init_checkpoint=%s" % output_dir,
                      "--bert_config_file=%s" % TINY, "--vocab_file=%s" % VOCAB,
                      "--do_lower_case=False", "--output_dir=%s" % hf_dir])
    with open(os.path.join(hf_dir, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    assert config["architectures"] == ["BertForTokenClassification"]
    assert [config["id2label"][str(i)] for i in range(13)] == list(klue.LABELS)

    tf_dir = str(tmp_path / "tf")
    _, log = convert(["--to=tf", "--hf_dir=%s" % hf_dir, "--output_dir=%s" % tf_dir])
    assert "BertForTokenClassification" in log and "run_ner.py" in log
    back = os.path.join(tf_dir, "bert_model.ckpt")
    for name in ("tagger/output_weights", "tagger/output_bias",
                 "bert/encoder/layer_1/output/dense/kernel"):
        np.testing.assert_array_equal(tf.train.load_variable(back, name),
                                      tf.train.load_variable(checkpoint, name))

    batch = padded([[2, 1000, 2000, 3000, 3], [2, 77, 3], [2] + list(range(500, 530)) + [3]],
                   32, with_segments=False)
    ours = tagger_logits(checkpoint, batch)
    transformers, torch = hf_packages()
    model, info = transformers.BertForTokenClassification.from_pretrained(
        hf_dir, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    model.eval()
    with torch.no_grad():
        theirs = model(**{name: torch.tensor(a, dtype=torch.long) for name, a in zip(
            ("input_ids", "attention_mask", "token_type_ids"), batch)}).logits.numpy()
    mask = batch[1].astype(bool)
    assert ours.shape == theirs.shape == (3, 32, 13)
    assert np.max(np.abs(ours[mask] - theirs[mask])) < TOLERANCE
