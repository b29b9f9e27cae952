"""TPUEstimator plumbing: the runtime, record decoding, the run's output folder."""
