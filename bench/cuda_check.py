"""On a CUDA device, in seconds and with no compile: the tiny engine's one-image-at-a-time decode (pinned copies,
`decoding.decode`) against the whole batch, and the folded upsampling layers (`upsampling.py`) against diffusers'
in fp16 and channels_last. A correctness check of the CUDA-only paths, not a speed figure.

    python3 bench/cuda_check.py        # on the device: diffusers, importlib_metadata and qrcode installed
"""
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, ".")
from generator.core.codes import qr  # noqa: E402
from generator.core.engines import loading, tiny, upsampling  # noqa: E402
from generator.core.engines.parameters import GenerationParams  # noqa: E402

spec = tiny.tiny_spec(Path("/tmp/tinyspec"))
engine = loading.load_engine(spec, device="cuda", warm_up=False, optimize=False, aesthetic=False)
print("device", engine.device, "dtype", engine.dtype, "decode_group", engine.decode_group, torch.cuda.get_device_name())
control = qr.render_control_image(qr.encode("https://qart.example/r/AbC123"), 256)
params = GenerationParams(prompt="a lighthouse", steps=4, size=256)
seeds = [1, 2, 3, 4, 5]


def diff(xs, ys):
    return max(int(np.abs(np.asarray(x, int) - np.asarray(y, int)).max()) for x, y in zip(xs, ys, strict=True))


handed = []
started = time.perf_counter()
one = engine.generate(control, params, seeds, on_decoded=handed.append)
print("group 1:", [len(g) for g in handed], "same objects", [i for g in handed for i in g] == one,
      f"{time.perf_counter() - started:.2f}s")
engine.decode_group = 0
whole = engine.generate(control, params, seeds)
print("group 1 vs whole batch, max abs:", diff(one, whole))
for model in (engine.txt2img.unet, engine.txt2img.vae):
    print("folded", type(model).__name__, upsampling.fold_upsamplers(model))
    model.to(memory_format=torch.channels_last)
folded = engine.generate(control, params, seeds)
print("folded vs diffusers' layers, max abs:", diff(folded, whole))
x = torch.randn(2, 64, 12, 12, device="cuda", dtype=torch.float16).contiguous(memory_format=torch.channels_last)
from diffusers.models.upsampling import Upsample2D  # noqa: E402

layer = Upsample2D(64, use_conv=True).to("cuda", torch.float16).to(memory_format=torch.channels_last)
holder = torch.nn.Sequential(layer)
ref = layer(x)
upsampling.fold_upsamplers(holder)
got = holder[0](x)
print("layer fp16 cuda: max abs", (got - ref).abs().max().item(), "ref scale", ref.abs().max().item(),
      "channels_last", got.is_contiguous(memory_format=torch.channels_last))
print("CHECK DONE")
