"""generator.core.engines.decoding: latents to the candidates' images, as the pipelines' own ending makes them."""

from __future__ import annotations

import torch
from diffusers.image_processor import VaeImageProcessor

from generator.core.engines import decoding


def test_it_converts_as_diffusers_does_to_the_last_rounding():
    # every level and every half-way point between two levels, in fp16 as the VAE gives them
    values = torch.cat([torch.arange(256) / 255, (torch.arange(255) + 0.5) / 255, torch.rand(4097)])
    batch = values[: 3 * 32 * 48].reshape(1, 3, 32, 48).repeat(2, 1, 1, 1).half()
    expected = VaeImageProcessor().numpy_to_pil(VaeImageProcessor.pt_to_numpy(batch))
    assert [im.tobytes() for im in decoding.to_images(batch)] == [im.tobytes() for im in expected]


def test_it_decodes_as_the_pipeline_ends_its_call(tiny_engine):
    pipe = tiny_engine.txt2img
    torch.manual_seed(3)
    latents = torch.randn(3, pipe.vae.config.latent_channels, 32, 32)
    with torch.inference_mode():
        pixels = pipe.vae.decode(latents / pipe.vae.config.scaling_factor, return_dict=False)[0]
        theirs = pipe.image_processor.postprocess(pixels, output_type="pil")  # diffusers' own ending
        handed: list[list] = []
        ours = decoding.decode(pipe, latents, on_decoded=handed.append)
    assert [im.tobytes() for im in ours] == [im.tobytes() for im in theirs]
    assert handed == [ours]  # group 0: the whole batch, one hand-over
    with torch.inference_mode():
        one_by_one = decoding.decode(pipe, latents, group=2, on_decoded=handed.append)
    assert [len(group) for group in handed[1:]] == [2, 1] and [im.size for im in one_by_one] == [(256, 256)] * 3


def _recorded(pipe, monkeypatch, calls: list):
    """`pipe.vae.decode` noting each call in `calls`, as the hand-overs note theirs."""
    decode = pipe.vae.decode

    def noted(latents, **kwargs):
        calls.append(f"decode {len(latents)}")
        return decode(latents, **kwargs)

    monkeypatch.setattr(pipe.vae, "decode", noted)


def test_on_cuda_the_next_decode_is_queued_before_each_hand_over(tiny_engine, monkeypatch):
    # On CUDA the GPU decodes the next group while the last is handed over: one decode ahead, not all of them.
    # (Run here on the CPU with `decodes_ahead` said to be 1; the copies' events are CUDA's own and are not needed
    # for the order.)
    pipe = tiny_engine.txt2img
    latents = torch.randn(3, pipe.vae.config.latent_channels, 32, 32, generator=torch.Generator().manual_seed(4))
    calls: list[str] = []
    _recorded(pipe, monkeypatch, calls)
    with torch.inference_mode():
        alone = decoding.decode(pipe, latents, group=1)
        calls.clear()
        monkeypatch.setattr(decoding, "decodes_ahead", lambda latents: 1)
        ahead = decoding.decode(pipe, latents, group=1, on_decoded=lambda g: calls.append(f"hand over {len(g)}"))
    assert calls == ["decode 1", "decode 1", "hand over 1", "decode 1", "hand over 1", "hand over 1"]
    assert [im.tobytes() for im in ahead] == [im.tobytes() for im in alone]  # the same images either way


def test_every_decode_can_be_queued_first(tiny_engine, monkeypatch):
    # The bench's "code-queued" jobs: as many ahead as there are groups, every decode before the first hand-over.
    pipe = tiny_engine.txt2img
    latents = torch.randn(3, pipe.vae.config.latent_channels, 32, 32, generator=torch.Generator().manual_seed(4))
    calls: list[str] = []
    _recorded(pipe, monkeypatch, calls)
    monkeypatch.setattr(decoding, "decodes_ahead", lambda latents: len(latents))
    with torch.inference_mode():
        decoding.decode(pipe, latents, group=1, on_decoded=lambda g: calls.append(f"hand over {len(g)}"))
    assert calls == ["decode 1"] * 3 + ["hand over 1"] * 3


def test_off_cuda_each_group_is_handed_over_as_soon_as_it_is_decoded(tiny_engine, monkeypatch):
    pipe = tiny_engine.txt2img
    latents = torch.randn(3, pipe.vae.config.latent_channels, 32, 32, generator=torch.Generator().manual_seed(4))
    calls: list[str] = []
    _recorded(pipe, monkeypatch, calls)
    assert decoding.decodes_ahead(latents) == 0
    with torch.inference_mode():
        decoding.decode(pipe, latents, group=2, on_decoded=lambda g: calls.append(f"hand over {len(g)}"))
    assert calls == ["decode 2", "hand over 2", "decode 1", "hand over 1"]
