"""The TPU attached to this machine: Cloud TPU VMs.

On a TPU VM the TPU chips are devices of the VM itself: /dev/accel0, /dev/accel1, ...
(v2, v3, v4) or /dev/vfio/0, ... (v5e and later), driven in-process by the TensorFlow
build preinstalled on the VM (TPU_VM=1 TF=2 scripts/setup.sh keeps it).
``TPUClusterResolver("local")`` then connects to them; elsewhere it quietly returns an
empty master and training would run on the CPU or fail much later, so --tpu_name=local
is checked here first.
"""

import glob

from krbert import cli
from krbert.tf_compat import IS_TF2, TF_VERSION

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
