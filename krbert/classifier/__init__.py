"""Fine-tuning: the task registry and readers, token-id features, the classifier graph and
SavedModel, and the metrics.
"""
