"""convert_checkpoint.py on run_squad.py's span model: to transformers'
BertForQuestionAnswering (its start and end logits within 1e-4 of this codebase's graph on
the run's own KorQuAD windows) and back (every variable bit-identical).
"""

import json
import os

import numpy as np
import pytest
from test_convert_checkpoint import TOLERANCE, convert, hf_packages
from test_run_squad import korquad_file, trained  # noqa: F401  (fixtures)

from krbert.bert_config import load_bert_config
from krbert.span import model as span_model
from krbert.tf_compat import tf


def eval_windows(output, count=6):
    """int32 [count, S] input_ids, input_mask, segment_ids of the run's eval.tf_record."""
    rows = []
    for record in tf.compat.v1.io.tf_record_iterator(os.path.join(output, "eval.tf_record")):
        feature = tf.train.Example.FromString(record).features.feature
        rows.append([list(feature[name].int64_list.value) for name in span_model.INPUT_NAMES])
        if len(rows) == count:
            break
    return [np.array([row[i] for row in rows], np.int32) for i in range(3)]


@pytest.fixture(scope="module")
def span_hf(trained, tmp_path_factory):  # noqa: F811
    pytest.importorskip("safetensors", reason="the safetensors package is not installed")
    out = str(tmp_path_factory.mktemp("span_hf") / "hf")
    checkpoint = tf.train.latest_checkpoint(trained["output"])
    flags = dict(arg[2:].split("=", 1) for arg in trained["flags"])
    convert(["--to=hf", "--init_checkpoint=%s" % checkpoint,
             "--bert_config_file=%s" % flags["bert_config_file"],
             "--vocab_file=%s" % flags["vocab_file"], "--do_lower_case=False",
             "--output_dir=%s" % out])
    return out, checkpoint, flags


def test_span_head_export_matches_run_squads_logits(trained, span_hf):  # noqa: F811
    transformers, torch = hf_packages()
    out, checkpoint, flags = span_hf
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["architectures"] == ["BertForQuestionAnswering"]
    ids, mask, segments = eval_windows(trained["output"])
    bert_config = load_bert_config(flags["bert_config_file"])
    session, inputs, outputs = span_model.restore_span_model(bert_config, checkpoint,
                                                             flags["bert_config_file"])
    ours = session.run(outputs, {inputs["input_ids"]: ids, inputs["input_mask"]: mask,
                                 inputs["segment_ids"]: segments})
    session.close()
    model, info = transformers.BertForQuestionAnswering.from_pretrained(
        out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    model.eval()
    with torch.no_grad():
        theirs = model(input_ids=torch.tensor(ids, dtype=torch.long),
                       attention_mask=torch.tensor(mask, dtype=torch.long),
                       token_type_ids=torch.tensor(segments, dtype=torch.long))
    for name, value in (("start_logits", theirs.start_logits), ("end_logits",
                                                                theirs.end_logits)):
        difference = np.abs(ours[name] - value.numpy()) * mask  # padding is not scored
        assert difference.max() < TOLERANCE, (name, float(difference.max()))
    assert np.abs(ours["start_logits"]).max() > 0.01  # a trained head, not zeros


def test_span_round_trip_is_bit_identical(span_hf, tmp_path):
    out, checkpoint, _ = span_hf
    back = str(tmp_path / "tf")
    convert(["--to=tf", "--hf_dir=%s" % out, "--output_dir=%s" % back])
    reader = tf.train.load_checkpoint(os.path.join(back, "bert_model.ckpt"))
    original = tf.train.load_checkpoint(checkpoint)
    names = reader.get_variable_to_shape_map()
    assert {"cls/squad/output_weights", "cls/squad/output_bias"} <= set(names)
    assert not [name for name in names if name.startswith("bert/pooler/")]
    for name in names:
        assert np.array_equal(reader.get_tensor(name), original.get_tensor(name)), name
