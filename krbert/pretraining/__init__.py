"""Pretraining data and records: instances, the TFRecord format, the parallel writer, the heads."""
