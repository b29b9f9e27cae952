"""The matmul-ceiling benchmark lists exactly the matrix products of the real model."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))

import matmul_ceiling  # noqa: E402
import pytest  # noqa: E402
import modeling  # noqa: E402
from krbert.pretraining import heads  # noqa: E402
from krbert.tf_compat import tf  # noqa: E402

CONFIG = modeling.BertConfig(vocab_size=97, hidden_size=32, num_hidden_layers=3,
                             num_attention_heads=4, intermediate_size=48,
                             max_position_embeddings=16, type_vocab_size=2)


def graph_forward_flops(batch, seq, preds):
    """2 m k n summed over the MatMul / BatchMatMul ops of the pretraining forward graph."""
    with tf.Graph().as_default() as graph:
        ids = tf.zeros([batch, seq], tf.int32)
        model = modeling.BertModel(CONFIG, True, ids, ids + 1, ids)
        positions = tf.zeros([batch, preds], tf.int32)
        heads.get_masked_lm_output(CONFIG, model.get_sequence_output(),
                                   model.get_embedding_table(), positions, positions,
                                   tf.ones([batch, preds]))
        heads.get_next_sentence_output(CONFIG, model.get_pooled_output(),
                                       tf.zeros([batch], tf.int32))
        flops = 0
        for op in graph.get_operations():
            if op.type not in ("MatMul", "BatchMatMul", "BatchMatMulV2"):
                continue
            a = op.inputs[0].shape.as_list()
            transpose_a = op.get_attr("transpose_a" if op.type == "MatMul" else "adj_x")
            k = a[-2] if transpose_a else a[-1]
            out = op.outputs[0].shape.as_list()
            count = 1
            for dim in out[:-2]:
                count *= dim
            flops += 2 * count * out[-2] * k * out[-1]
        return flops


def test_product_list_matches_model_graph():
    for batch, seq, preds in [(2, 8, 3), (3, 16, 5)]:
        listed = sum(2 * count * m * k * n * times for _, count, m, k, n, times
                     in matmul_ceiling.forward_products(CONFIG, batch, seq, preds))
        assert listed == graph_forward_flops(batch, seq, preds)


@pytest.mark.parametrize("bfloat16", [False, True])
def test_step_matmul_seconds_counts_three_products_per_forward_one(bfloat16):
    seconds, flops = matmul_ceiling.step_matmul_seconds(CONFIG, 2, 8, 3, tf.ConfigProto(),
                                                        repeats=1, bfloat16=bfloat16)
    assert seconds > 0
    assert flops == 3 * graph_forward_flops(2, 8, 3)


def test_bfloat16_products_take_bfloat16_operands():
    with tf.Graph().as_default():
        products = matmul_ceiling._product_ops(tf, 2, 4, 3, 5, tf.bfloat16)
        assert [p.dtype for p in products] == [tf.bfloat16] * 3
        assert [p.shape.as_list() for p in products] == [[2, 4, 5], [2, 4, 3], [2, 3, 5]]
