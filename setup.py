"""Builds the optional C tokenizer (``krbert.tokenizers._fast_tokenizer``) in place.

    python setup.py build_ext --inplace

scripts/setup.sh runs this for the environment it sets up and again whenever csrc/ or this
file changes. Without the built module, tokenization.py tokenizes in pure Python: the same
tokens, slower. Needs a C compiler and the Python headers; no other dependency.
"""

from setuptools import Extension, setup

setup(
    name="krbert-fast-tokenizer",
    version="1",
    packages=[],
    py_modules=[],
    ext_modules=[Extension("krbert.tokenizers._fast_tokenizer",
                           sources=["krbert/tokenizers/csrc/fast_tokenizer.c"],
                           depends=["krbert/tokenizers/csrc/vocab_trie.h"])],
)
