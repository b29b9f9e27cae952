"""Cloud Storage reachability: gs:// paths on a machine that cannot reach Cloud Storage fail
within seconds (`check_gcs_reachable`) instead of after TensorFlow's minutes of retries.
"""

import os
import socket
import threading
from urllib.parse import urlparse

from krbert import cli

GCS_HOST = "www.googleapis.com"  # where TensorFlow's gs:// file system sends its requests


def check_gcs_reachable(paths, timeout=5.0):
    """Raises InputError within ``timeout`` seconds when a gs:// path is among ``paths``
    (None or comma-separated globs too) and Cloud Storage, or the https proxy, does not
    answer; TensorFlow itself would retry for minutes before failing."""
    gcs = [path for path in paths if path and "gs://" in path]
    if not gcs:
        return
    host, port, via = GCS_HOST, 443, ""
    proxy = os.environ.get("https_proxy") or os.environ.get("HTTPS_PROXY")
    if proxy:
        parsed = urlparse(proxy if "://" in proxy else "http://" + proxy)
        host, port, via = parsed.hostname, parsed.port or 80, " through the https proxy"
    failure = []

    def connect():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except (OSError, ValueError) as e:
            failure.append(getattr(e, "strerror", None) or str(e))

    prober = threading.Thread(target=connect)
    prober.daemon = True
    prober.start()
    prober.join(timeout)
    if prober.is_alive():
        failure.append("no answer within %g s" % timeout)
    if failure:
        raise cli.InputError("%s: Cloud Storage cannot be reached%s (%s:%d: %s); check the "
                             "network, or use local paths" % (gcs[0], via, host, port, failure[0]))
