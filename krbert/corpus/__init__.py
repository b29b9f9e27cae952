"""Pretraining text: corpora in the create_pretraining_data format, and their shards."""
