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
