"""Checkpoints: restoring them into a graph, and converting them to and from Hugging Face."""
