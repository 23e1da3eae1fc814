"""Devices: idle-GPU advice and one message for a device this machine lacks."""

from __future__ import annotations

import pytest

from generator.core.engines import devices, loading
from generator.core.engines.parameters import DeviceNotFound


class TestDevices:
    def test_a_worker_leaving_gpus_idle_says_how_to_use_them(self):
        hint = devices.unused_gpus_hint(2, ["cuda"])
        assert "2 GPUs and this worker uses 1" in hint and "QART_DEVICES=cuda:0,cuda:1" in hint
        assert "CUDA_VISIBLE_DEVICES" in hint
        assert devices.unused_gpus_hint(2, ["cuda:0", "cuda:1"]) is None
        assert devices.unused_gpus_hint(1, ["cuda"]) is None
        assert "uses 2" in devices.unused_gpus_hint(4, ["cuda:2", "cuda:3"])

    def test_a_gpu_this_machine_lacks_gives_one_message(self, tiny_spec, monkeypatch):
        import torch

        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
        with pytest.raises(DeviceNotFound, match=r"'cuda:2' is not on this machine, which has 2 GPUs"):
            loading.load_split_engine(tiny_spec, ["cuda:0", "cuda:2"])
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        with pytest.raises(DeviceNotFound, match="which has 0 GPUs"):
            loading.load_engine(tiny_spec, device="cuda")
