"""Command-line plumbing shared by the scripts: one-line errors instead of tracebacks.

A script raises ``InputError("path:line: what is wrong; what to do")`` for bad input
and starts with ``cli.run(main)``; the user then sees that one line on stderr and the
process exits with status 1.
"""

import ctypes
import math
import os
import signal
import sys
import threading
import time

from absl import app


class InputError(Exception):
    """Bad input from the user: a file, a flag or data. The message is shown as is."""


def check_positive_number(flag, value):
    """Raises InputError unless ``value`` is a finite number above 0 (nan, inf, 0, < 0)."""
    if not (math.isfinite(value) and value > 0):
        raise InputError("--%s=%s: must be a finite number above 0" % (flag, value))


def fail(message):
    """Prints ``error: message`` on stderr and exits with status 1."""
    sys.stderr.write("error: %s\n" % message)
    sys.stderr.flush()
    sys.exit(1)


INTERRUPTED = ("interrupted (Ctrl-C); every output is written whole or not at all, so "
               "rerun the same command")
"""The line of a run stopped by Ctrl-C that its script does not report itself."""


def run(main, argv=None):
    """``absl.app.run(main)``, turning an InputError into a one-line error and exit 1, and
    Ctrl-C (KeyboardInterrupt) into the line INTERRUPTED and exit 130."""

    def guarded(args):
        try:
            return main(args)
        except InputError as e:
            fail(str(e))
        except KeyboardInterrupt:
            sys.stderr.write("error: %s\n" % INTERRUPTED)
            sys.stderr.flush()
            sys.exit(130)

    app.run(guarded, argv=argv)


def error_reason(error):
    """The short text of an OSError or a TensorFlow OpError (str() of anything else), for
    one-line messages: its first line (TensorFlow adds lines naming the graph node)."""
    text = getattr(error, "message", None) or getattr(error, "strerror", None) or str(error)
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


PR_SET_PDEATHSIG = 1
"""Linux prctl option: the signal a process gets when its parent dies."""


def stop_with_parent(parent_pid):
    """Makes a worker process end when its parent (``parent_pid``) dies: SIGTERM from the
    kernel on Linux, else a thread that watches the parent."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        def watch():
            while os.getppid() == parent_pid:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before the line above
        os._exit(1)
