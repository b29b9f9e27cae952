"""KR-BERT-MEDIUM's library: everything the scripts at the repository root use beyond
modeling.py, tokenization.py and optimization.py.

Subpackages by role, importing downward only (tests/test_layout.py checks it):
``cli``, ``tf_compat``, ``bert_config``, ``files`` and ``tokenizers`` at the base; the root
modules ``modeling``, ``tokenization`` and ``optimization`` above them; ``pretraining``,
``corpus``, ``vocab``, ``classifier``, ``checkpoints`` and ``estimator`` above those; the
scripts on top.
"""
