"""Shared fixtures: the project root on sys.path and the real-data directory."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def _data_dir():
    return os.path.abspath(os.environ.get("DATA_DIR", os.path.join(ROOT, "data")))


@pytest.fixture(scope="session")
def data_dir():
    """The real-data folder (DATA_DIR, default data/); fails, never skips, when it is missing."""
    path = _data_dir()
    if not os.path.isfile(os.path.join(path, "nsmc", "test.tsv")):
        pytest.fail(
            "real data not found in DATA_DIR=%s: set DATA_DIR to the folder holding nsmc/, hate/, "
            "corpus/ and krbert/ (run scripts/download_data.sh to fetch the public parts)" % path,
            pytrace=False)
    return path


@pytest.fixture(scope="session")
def krbert_dir(data_dir):
    """The published KR-BERT vocabularies and configs (DATA_DIR/krbert)."""
    path = os.path.join(data_dir, "krbert")
    if not os.path.isdir(path):
        pytest.fail("DATA_DIR/krbert not found at %s: it holds the published KR-BERT vocabularies "
                    "and configs" % path, pytrace=False)
    return path


@pytest.fixture
def file_size_limit():
    """``limit(max_bytes)``: a preexec_fn making a child process's writes fail beyond
    ``max_bytes`` per file with EFBIG, as on a full disk (SIGXFSZ ignored)."""
    import resource
    import signal

    def limit(max_bytes):
        def apply():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
        return apply

    return limit


@pytest.fixture
def kill_after_checkpoint():
    """``kill(command, output_dir, step)``: starts ``command``, SIGKILLs it once
    ``output_dir`` holds a checkpoint of ``step`` or later; returns that checkpoint's step."""
    import signal
    import subprocess
    import time

    def latest_step(output_dir):
        try:
            with open(os.path.join(output_dir, "checkpoint")) as handle:
                return int(handle.readline().rsplit("-", 1)[1].strip().strip('"'))
        except (IOError, OSError, IndexError):
            return 0

    def kill(command, output_dir, step):
        proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 300
            while latest_step(output_dir) < step and proc.poll() is None and time.time() < deadline:
                time.sleep(0.05)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait()
        assert proc.returncode == -signal.SIGKILL, "the run ended before it was killed"
        return latest_step(output_dir)

    return kill
