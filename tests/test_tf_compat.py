"""krbert.tf_compat: TensorFlow's v1 API and TPUEstimator on TF 1.15 and 2.15."""

from krbert.tf_compat import IS_TF2, TF_VERSION, tf, tpu_estimator


def test_tf_compat_gives_the_v1_api_on_both_versions():
    assert TF_VERSION.startswith("2.15" if IS_TF2 else "1.15")
    assert not tf.executing_eagerly()
    assert hasattr(tf, "placeholder") and hasattr(tf, "Session")
    assert tpu_estimator.TPUEstimator.__name__ == "TPUEstimator"
