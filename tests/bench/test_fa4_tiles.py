"""bench/fa4_tiles.py and `bench/gpu.py --fa4-tile`: FlashAttention 4's tile shapes, swept on an H200 (bench/GPU.md,
eighth step). Only the parts that run without a GPU are tested here: reading the configurations, and the override
reaching every call the product's op makes."""

import sys
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import fa4_tiles  # noqa: E402
import gpu  # noqa: E402


def test_it_reads_tile_shapes_and_flags():
    assert fa4_tiles.parse("192x128:1:1, 128x64:0:1") == [(192, 128, True, True), (128, 64, False, True)]
    first = fa4_tiles.parse(fa4_tiles.CONFIGS)[0]
    assert first == (192, 128, True, True)  # FA4's own choice for heads of 40 comes first: the errors compare to it


def test_the_override_reaches_every_call_through_flash_attn_func(monkeypatch):
    seen = []

    def _flash_attn_fwd(q, k, v, tile_mn=None, mma_pv_is_rs=None, intra_wg_overlap=None, **kwargs):
        seen.append((tile_mn, mma_pv_is_rs, intra_wg_overlap))
        return (q,)

    interface = types.ModuleType("flash_attn.cute.interface")
    interface._flash_attn_fwd = _flash_attn_fwd
    # flash_attn_func looks the forward up in its module at each call, as FA4's FlashAttnFunc does.
    interface.flash_attn_func = lambda q, k, v: interface._flash_attn_fwd(q, k, v, softmax_scale=None)[0]
    cute = types.ModuleType("flash_attn.cute")
    cute.interface = interface
    package = types.ModuleType("flash_attn")
    package.cute = cute
    monkeypatch.setitem(sys.modules, "flash_attn", package)
    monkeypatch.setitem(sys.modules, "flash_attn.cute", cute)
    monkeypatch.setitem(sys.modules, "flash_attn.cute.interface", interface)

    chosen = gpu.use_fa4_tile("192,96,1,0")

    assert chosen == {"tile_mn": [192, 96], "mma_pv_is_rs": True, "intra_wg_overlap": False}
    assert interface.flash_attn_func("q", "k", "v") == "q"
    assert interface.flash_attn_func("q", "k", "v") == "q"
    assert seen == [((192, 96), True, False)] * 2
