"""krbert.files.in_use: one run per output folder."""

import os
import socket
import subprocess
import time

import pytest

from krbert import cli
from krbert.files import atomic, in_use


def test_of_two_runs_claiming_one_folder_the_older_marker_holds_it(tmp_path):
    host = socket.gethostname().split(".")[0]
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        newer = tmp_path / ("in_use%s%s.%d" % (atomic.TMP_MARK, host, sleeper.pid))
        newer.write_text(u"")
        os.utime(str(newer), (time.time() + 60, time.time() + 60))  # claimed after this run
        marker = in_use.claim(str(tmp_path), "--output_dir")  # this run was first: it holds
        assert os.path.exists(marker) and newer.exists()
        os.utime(str(newer), (time.time() - 60, time.time() - 60))  # claimed before it
        with pytest.raises(cli.InputError, match="is in use by another run"):
            in_use.claim(str(tmp_path), "--output_dir")
        assert not os.path.exists(marker) and newer.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
