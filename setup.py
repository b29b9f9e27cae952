"""Builds the optional C tokenizer (module ``_fast_tokenizer``) next to tokenization.py.

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
    ext_modules=[Extension("_fast_tokenizer", sources=["csrc/fast_tokenizer.c"],
                           depends=["csrc/vocab_trie.h"])],
)
