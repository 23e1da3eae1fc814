"""Which devices a worker runs on: the best one here, whether a named one exists, and idle-GPU advice.

The names themselves (QART_DEVICES) are parsed by the settings; this module asks torch about the machine.
"""

from __future__ import annotations

from collections.abc import Sequence

from generator.core.engines.parameters import DeviceNotFound


def pick_device() -> tuple[str, object]:
    """The best device here and its dtype: CUDA in fp16, else CPU fp32."""
    import torch

    if torch.cuda.is_available():
        return "cuda", torch.float16
    return "cpu", torch.float32


def unused_gpus_hint(gpu_count: int, devices: Sequence[str]) -> str | None:
    """A line for the worker's log when it leaves GPUs of this machine idle, saying how to use them."""
    used = {int(d.partition(":")[2] or 0) for d in devices if d.startswith("cuda")} or {0}
    idle = [i for i in range(gpu_count) if i not in used]
    if not idle:
        return None
    every = ",".join(f"cuda:{i}" for i in range(gpu_count))
    return (f"This machine has {gpu_count} GPUs and this worker uses {len(used)}: start one worker per GPU "
            f"(CUDA_VISIBLE_DEVICES=<n>) for more jobs an hour, or set QART_DEVICES={every} to share each job "
            f"across them for faster jobs.")


def check_device(device: str) -> None:
    """Raise `DeviceNotFound` with one message when `device` is not on this machine."""
    import torch

    if not device.startswith("cuda"):
        if device == "mps" and not torch.backends.mps.is_available():
            raise DeviceNotFound("The device 'mps' is not available on this machine.")
        return
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(device.partition(":")[2] or 0)
    if index >= count:
        have = f"{count} GPU{'s' if count != 1 else ''}" + (f" (cuda:0 to cuda:{count - 1})" if count > 1 else "")
        raise DeviceNotFound(f"The device '{device}' is not on this machine, which has {have}: set "
                             f"QART_DEVICES to GPUs it has, or leave it empty to use the best one.")

