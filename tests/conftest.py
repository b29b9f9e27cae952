"""Shared fixtures: the project root on sys.path and the data folders.

Data: DATA_DIR when it is set; otherwise data/ when it holds the full data; otherwise the
shipped sample data/sample/. Every test that reads data runs on the sample; the checks that
need the full data (``full_data_dir``) or the published KR-BERT vocabularies
(``krbert_dir``) are skipped with their reason when those are missing, and the closing
lines of the run count what was left out.
"""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

SAMPLE_DIR = os.path.join(ROOT, "data", "sample")
NEEDS_FULL_DATA = "needs the full data"
NEEDS_KRBERT = "needs the published KR-BERT vocabularies"


def resolve_data_dir():
    """(folder, is_full): DATA_DIR if set, else data/ if it holds the full data, else the
    sample."""
    explicit = os.environ.get("DATA_DIR")
    if explicit:
        path = os.path.abspath(explicit)
    elif os.path.isfile(os.path.join(ROOT, "data", "nsmc", "test.tsv")):
        path = os.path.join(ROOT, "data")
    else:
        path = SAMPLE_DIR
    return path, os.path.realpath(path) != os.path.realpath(SAMPLE_DIR)


def describe_data():
    """One line naming the data the tests read."""
    path, is_full = resolve_data_dir()
    return "%s (%s)" % (path, "full data" if is_full else "the shipped sample")


DATA_MARKER = "data"


def pytest_configure(config):
    config.addinivalue_line("markers", "%s: reads the data folder (DATA_DIR, or data/sample on "
                            "a fresh clone); set on every test that uses the data_dir fixture"
                            % DATA_MARKER)


def pytest_collection_modifyitems(items):
    """Marks every test that reads the data folder (through data_dir, directly or by another
    fixture) with ``data``: ``scripts/test.sh -m data`` runs them alone (CI, on the sample)."""
    for item in items:
        if "data_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(DATA_MARKER)


@pytest.fixture(scope="session")
def data_dir():
    """The data folder: the full data or the sample; fails, never skips, when DATA_DIR
    names a folder without the data."""
    path, _ = resolve_data_dir()
    if not os.path.isfile(os.path.join(path, "nsmc", "test.tsv")):
        pytest.fail(
            "data not found in DATA_DIR=%s: set DATA_DIR to the folder holding nsmc/, hate/, "
            "corpus/ (and krbert/), or unset it to use data/sample" % path, pytrace=False)
    return path


@pytest.fixture(scope="session")
def is_full_data(data_dir):
    """True on the full data, False on the shipped sample."""
    return resolve_data_dir()[1]


@pytest.fixture(scope="session")
def full_data_dir(data_dir, is_full_data):
    """The full data folder; skips the test (with its reason) on the sample."""
    if not is_full_data:
        pytest.skip("%s (running on data/sample; set DATA_DIR to the full data, see "
                    "scripts/download_data.sh)" % NEEDS_FULL_DATA)
    return data_dir


@pytest.fixture(scope="session")
def krbert_dir(data_dir):
    """The published KR-BERT vocabularies and configs (DATA_DIR/krbert); skips the test
    (with its reason) when they are missing: they are not shipped (licence not stated)."""
    path = os.path.join(data_dir, "krbert")
    if not os.path.isfile(os.path.join(path, "vocab_krmedium_20000.txt")):
        pytest.skip("%s (not shipped: licence not stated; set DATA_DIR to a folder with "
                    "krbert/, see scripts/download_data.sh)" % NEEDS_KRBERT)
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


def mounted_tmpfs(mount, options, purpose):
    """Mounts a tmpfs with ``options`` on the new folder ``mount`` and yields it; unmounts it
    after (skips the test where mounting is not allowed: it needs root)."""
    import subprocess

    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs for %s (needs root): %s"
                    % (purpose, done.stderr.decode("utf-8", "replace").strip()))
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)])


@pytest.fixture
def read_only_folder(tmp_path):
    """A read-only file system (a tmpfs mounted ro) under tmp_path: read-only even for root."""
    yield from mounted_tmpfs(tmp_path / "read_only", "ro,size=1m", "a read-only folder")


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


def shipped_or_published(request, name, shipped):
    """``shipped`` (a file in the repository) for ``name`` "shipped", else the published
    KR-BERT file DATA_DIR/krbert/``name``: the test is skipped, with its reason, without it."""
    if name == "shipped":
        return shipped
    return os.path.join(request.getfixturevalue("krbert_dir"), name)


def skip_counts(skipped_reports):
    """{what they need: count} of skipped test reports: the full data, the KR-BERT
    vocabularies, or else the skip's own reason."""
    counts = {}
    for report in skipped_reports:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(
            report.longrepr)
        reason = reason.split("Skipped: ", 1)[-1]
        for group in (NEEDS_FULL_DATA, NEEDS_KRBERT):
            if reason.startswith(group):
                reason = group
        counts[reason] = counts.get(reason, 0) + 1
    return counts


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter):
    """After pytest's own summary (with -rs, every skip and its reason): one line counting
    the checks left out, by reason, and the data the run read."""
    yield
    skipped = terminalreporter.stats.get("skipped", [])
    counts = skip_counts(skipped)
    if counts:
        parts = ", ".join("%d (%s)" % (count, reason) for reason, count in sorted(counts.items()))
        line = "%d check%s left out: %s" % (len(skipped), "s"[:len(skipped) != 1], parts)
    else:
        line = "no check left out"
    terminalreporter.write_line("%s; data: %s" % (line, describe_data()))
