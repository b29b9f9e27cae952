"""Pretraining text: corpora in the create_pretraining_data format, and their shards.

build_corpus.py's stages, from raw sources to shards (none imports TensorFlow): ``sources``
(streaming readers) and ``wikitext`` (MediaWiki pages to paragraphs), ``clean``
(normalisation and filters), ``split`` (sentences), ``dedup`` (exact and near-duplicate),
``writer`` (shards and the resumable state), ``stats`` (the report), ``build`` (workers and
the order of it all). shard_corpus.py's ``shards`` cuts a corpus already in the format.
"""
