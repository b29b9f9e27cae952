"""bfloat16 prediction (--use_bfloat16, krbert/precision.py): predict.py, run_classifier.py
--do_predict, the SavedModel of --do_export --use_bfloat16 and extract_features.py.

The model is the shared tiny NSMC run (the session fixture nsmc_finetuned); the texts are
the shipped sample's NSMC test slice (data/sample/nsmc/test.tsv, whatever DATA_DIR says).
bfloat16 keeps 8 bits of mantissa, so the probabilities move a little and the labels must
stay float32's on at least 99.9% of the texts.
"""

import json
import os
import shutil

import numpy as np
from test_predict import parse, predict
from tiny_models import run_classifier

from krbert import precision
from krbert.bert_config import load_bert_config
from krbert.classifier import model as classifier_model
from krbert.classifier import tasks
from krbert.tf_compat import tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_NSMC = os.path.join(ROOT, "data", "sample", "nsmc")
MIN_AGREEMENT = 0.999
BFLOAT16_ATOL = 0.02
"""How far a bfloat16 probability may be from float32's on the tiny model."""


def model_args(classifier_flags, nsmc_finetuned):
    keep = ("--bert_config_file", "--vocab_file", "--do_lower_case", "--max_seq_length")
    return [f for f in classifier_flags if f.startswith(keep)] + [
        "--task_name=NSMC", "--init_checkpoint=%s" % nsmc_finetuned["output"]]


def sample_texts(tmp_path):
    texts = [e.text for e in tasks.get_processor("nsmc").read_split(SAMPLE_NSMC, "test").examples]
    path = tmp_path / "reviews.txt"
    path.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    return str(path), texts


def kernel_casts(graph):
    """The ops that cast a dense kernel to bfloat16 at every batch (not once, into a copy)."""
    return [op for op in graph.get_operations() if op.type == "Cast"
            and op.outputs[0].dtype == tf.bfloat16
            and "/kernel" in op.inputs[0].name and "bfloat16_copy" not in op.name]


def compare(float32, bfloat16):
    """Asserts bfloat16's probabilities are near float32's, not equal (it did run in
    bfloat16) and give the same labels on >= MIN_AGREEMENT of the rows."""
    assert float32.shape == bfloat16.shape
    assert not np.array_equal(float32, bfloat16)
    assert np.allclose(float32, bfloat16, atol=BFLOAT16_ATOL), np.abs(float32 - bfloat16).max()
    agreement = np.mean(float32.argmax(axis=1) == bfloat16.argmax(axis=1))
    assert agreement >= MIN_AGREEMENT, agreement


def test_predict_in_bfloat16_keeps_float32s_labels_on_the_nsmc_sample(
        nsmc_finetuned, classifier_flags, tmp_path):
    path, texts = sample_texts(tmp_path)
    assert len(texts) > 1000  # 99.9% allows one label in a thousand to differ
    args = model_args(classifier_flags, nsmc_finetuned) + ["--input_file=%s" % path]
    _, float32_out, _ = predict(args)
    _, bfloat16_out, _ = predict(args + ["--use_bfloat16"])
    header, rows, _, float32 = parse(float32_out)
    bf_header, bf_rows, _, bfloat16 = parse(bfloat16_out)
    assert (bf_header, bf_rows) == (header, rows) and len(rows) == len(texts)
    compare(float32, bfloat16)


def test_do_predict_in_bfloat16_keeps_float32s_labels(nsmc_finetuned, classifier_flags,
                                                      tmp_path):
    output = str(tmp_path / "out")
    run_classifier(classifier_flags + [
        "--task_name=nsmc", "--data_dir=%s" % nsmc_finetuned["data"],
        "--output_dir=%s" % output, "--do_predict", "--use_bfloat16",
        "--init_checkpoint=%s" % tf.train.latest_checkpoint(nsmc_finetuned["output"])])
    results = [np.loadtxt(os.path.join(folder, "test_results.tsv"), delimiter="\t")
               for folder in (nsmc_finetuned["output"], output)]
    compare(*results)


def test_a_bfloat16_export_computes_in_bfloat16_with_float32_outputs(
        nsmc_finetuned, classifier_flags, tmp_path):
    export, run = str(tmp_path / "export"), str(tmp_path / "run")
    shutil.copytree(nsmc_finetuned["output"], run)  # a run claims its --output_dir
    run_classifier(classifier_flags + ["--task_name=NSMC", "--output_dir=%s" % run,
                                       "--do_export", "--use_bfloat16",
                                       "--export_dir=%s" % export])
    version = os.path.join(export, "1")
    with open(os.path.join(version, "assets.extra", "classifier.json")) as handle:
        assert json.load(handle)[precision.COMPUTE_DTYPE_KEY] == "bfloat16"
    graph = tf.Graph()
    with tf.Session(graph=graph) as session:
        signature = tf.saved_model.loader.load(
            session, [tf.saved_model.tag_constants.SERVING], version).signature_def[
                "serving_default"]
        assert signature.outputs["probabilities"].dtype == tf.float32.as_datatype_enum
        matmuls = [op for op in graph.get_operations() if op.type in ("MatMul", "BatchMatMulV2")]
        assert any(op.outputs[0].dtype == tf.bfloat16 for op in matmuls)
        assert kernel_casts(graph) == []  # the loader made the kernels' copies once

    path, _ = sample_texts(tmp_path)
    _, served, log = predict(["--saved_model=%s" % export, "--input_file=%s" % path])
    assert "computes in bfloat16" in log
    _, checkpoint, _ = predict(model_args(classifier_flags, nsmc_finetuned)
                               + ["--input_file=%s" % path, "--use_bfloat16"])
    np.testing.assert_array_equal(parse(served)[3], parse(checkpoint)[3])
    code, _, err = predict(["--saved_model=%s" % export, "--input_file=%s" % path,
                            "--use_bfloat16"], expect_ok=False)
    assert code == 1 and err.strip().splitlines()[-1].startswith(
        "error: --saved_model carries the model") and "drop --use_bfloat16" in err


def test_inference_dtypes():
    assert precision.inference_dtype(False) == tf.float32
    assert precision.inference_dtype(True) == tf.bfloat16
    assert precision.mode_dtype(tf.float16, is_training=False) == tf.float32
    assert precision.mode_dtype(tf.float16, is_training=True) == tf.float16
    assert precision.mode_dtype(tf.bfloat16, is_training=False) == tf.bfloat16
    assert precision.saved_dtype({}) == tf.float32
    assert precision.saved_dtype({precision.COMPUTE_DTYPE_KEY: "bfloat16"}) == tf.bfloat16


def test_bfloat16_kernel_copies_give_the_same_bits_without_a_cast_per_batch(
        nsmc_finetuned, classifier_flags):
    config_file = [f for f in classifier_flags if f.startswith("--bert_config_file=")][0]
    config_file = config_file.split("=", 1)[1]
    bert_config = load_bert_config(config_file)
    checkpoint = tf.train.latest_checkpoint(nsmc_finetuned["output"])
    task = ("--task_name=NSMC", ("0", "1"))
    rng = np.random.RandomState(3)
    ids = rng.randint(5, bert_config.vocab_size, size=(6, 17)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[2:, 12:] = 0
    segments = np.zeros_like(ids)

    per_batch = classifier_model.restore_classifier(bert_config, checkpoint, task, config_file,
                                                    compute_dtype=tf.bfloat16)
    copied = classifier_model.Predictor.from_checkpoint(bert_config, checkpoint, task,
                                                        config_file, compute_dtype=tf.bfloat16)
    session, inputs, outputs = per_batch
    expected = session.run(outputs["probabilities"], {
        inputs["input_ids"]: ids, inputs["input_mask"]: mask, inputs["segment_ids"]: segments})
    assert len(kernel_casts(session.graph)) > 0 and kernel_casts(copied.session.graph) == []
    np.testing.assert_array_equal(copied.predict(ids, mask, segments), expected)
    session.close()
    copied.close()
