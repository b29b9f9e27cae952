"""Estimator plumbing: the runtime (TPUEstimator, or an Estimator under tf.distribute),
distribution flags and checks, the cluster of several machines, TPU VMs, record decoding,
the run's output folder."""
