"""The TPU attached to this machine: Cloud TPU VMs.

On a TPU VM the TPU chips are devices of the VM itself: /dev/accel0, /dev/accel1, ...
(v2, v3, v4) or /dev/vfio/0, ... (v5e and later), driven in-process by the TensorFlow
build preinstalled on the VM (TPU_VM=1 TF=2 scripts/setup.sh keeps it).
``TPUClusterResolver("local")`` then connects to them; elsewhere it quietly returns an
empty master and training would run on the CPU or fail much later, so --tpu_name=local
is checked here first. So are the other ways --use_tpu fails late with a traceback:
``require_tpu`` refuses --use_tpu with neither --tpu_name nor --master off a TPU VM
(TPUEstimator's "Cannot find any TPU cores"), ``cluster_resolver`` turns a Cloud TPU that
cannot be looked up by name (no network: URLError; TensorFlow 1.15 without
google-api-python-client: ImportError) into one line.
"""

import glob

from krbert import cli
from krbert.tf_compat import IS_TF2, TF_VERSION, TPUClusterResolver

DEVICE_PATTERNS = ("/dev/accel[0-9]*", "/dev/vfio/[0-9]*")
LOCAL = "local"


def tpu_devices(patterns=DEVICE_PATTERNS):
    """The TPU chip device files of this machine ([] when it is not a TPU VM)."""
    found = []
    for pattern in patterns:
        found.extend(sorted(glob.glob(pattern)))
    return found


def resolve_tpu_name(tpu_name, master=None, devices=None):
    """The TPU to connect to, for --use_tpu: ``tpu_name`` as given (a TPU node's name or
    grpc:// address), or "local" for the TPU of this TPU VM (--tpu_name=local, or no
    --tpu_name and no --master on a TPU VM).

    Raises InputError at once for --tpu_name=local on a machine without TPU chips, or
    under TensorFlow 1.x (no TPU VM runs it).

    Args:
      tpu_name: the --tpu_name flag (None when unset).
      master: the --master flag.
      devices: the TPU device files (default: looked up with tpu_devices()).
    """
    wants_local = (tpu_name or "").strip().lower() == LOCAL
    if not wants_local and (tpu_name or master):
        return tpu_name
    devices = tpu_devices() if devices is None else devices
    if not devices:
        if wants_local:
            raise cli.InputError(
                "--tpu_name=local drives the TPU of a Cloud TPU VM, but this machine has no "
                "TPU (no %s); run it on the TPU VM (scripts/pretrain_tpu.sh creates one), "
                "or pass a TPU node's name or grpc:// address" % " or ".join(DEVICE_PATTERNS))
        return tpu_name
    if not IS_TF2:
        raise cli.InputError(
            "--tpu_name=local: this TPU VM needs TensorFlow 2.15 (TPU_VM=1 TF=2 "
            "scripts/setup.sh uses the build preinstalled on it); TensorFlow %s has no "
            "TPU VM support" % TF_VERSION)
    return LOCAL


def require_tpu(tpu_name, master=None, devices=None):
    """resolve_tpu_name for --use_tpu, which needs a TPU: InputError (one line) when there
    is none to drive (no --tpu_name, no --master and no TPU chips on this machine)."""
    devices = tpu_devices() if devices is None else devices
    name = resolve_tpu_name(tpu_name, master, devices)
    if not name and not master:
        raise cli.InputError(
            "--use_tpu without --tpu_name or --master, and this machine has no TPU (no %s): "
            "run on a Cloud TPU VM (scripts/pretrain_tpu.sh creates one and runs there), "
            "give --tpu_name=<your TPU>, or drop --use_tpu to train on the CPU or a GPU"
            % " or ".join(DEVICE_PATTERNS))
    return name


def _first_line(error):
    text = str(error).strip()
    return "%s: %s" % (type(error).__name__, text.splitlines()[0] if text else "")


def cluster_resolver(tpu_name, zone=None, project=None, resolver_class=None):
    """The TPUClusterResolver of ``tpu_name`` (a Cloud TPU's name, grpc:// address or
    "local"); InputError (one line) when it cannot be made: the TPU cannot be looked up.

    Args:
      tpu_name, zone, project: --tpu_name, --tpu_zone, --gcp_project.
      resolver_class: the resolver (default TPUClusterResolver; tests pass a fake).
    """
    resolver_class = resolver_class or TPUClusterResolver
    try:
        return resolver_class(tpu_name, zone=zone, project=project)
    except ImportError:
        raise cli.InputError(
            "--tpu_name=%s: TensorFlow %s looks a Cloud TPU up by name through "
            "google-api-python-client and oauth2client, which are not installed. Cloud TPUs "
            "are TPU VMs now, driven on the VM with TensorFlow 2.15: run there with "
            "--tpu_name=local (scripts/pretrain_tpu.sh sets it up), or drop --use_tpu"
            % (tpu_name, TF_VERSION))
    except Exception as e:  # pylint: disable=broad-except
        # No network: URLError (TF 2.15); a wrong name, zone or project: an HTTP error.
        raise cli.InputError(
            "--tpu_name=%s: could not look this Cloud TPU up (%s); check the name, "
            "--tpu_zone, --gcp_project and that this machine reaches Google Cloud, or run "
            "on the TPU VM itself with --tpu_name=local (scripts/pretrain_tpu.sh)"
            % (tpu_name, _first_line(e)))
