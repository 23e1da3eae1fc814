"""The QR ControlNet: the skip on steps its guidance is off, and one compiled graph for every conditioning scale."""

from __future__ import annotations

import numpy as np
import pytest

from generator.core.engines import diffusion
from generator.core.engines.parameters import GenerationParams
from tests.generator.core.engines.conftest import FAST


class TestControlNetSkip:
    def test_it_learns_the_residual_shapes_once(self, tiny_engine, control, monkeypatch):
        # Compiled graphs guard on this dict: a write at every real call recompiled the ControlNet (seen on an H200).
        writes: list[tuple] = []

        class Counting(dict):
            def __setitem__(self, key, value):
                writes.append(key)
                super().__setitem__(key, value)

        monkeypatch.setattr(type(tiny_engine.txt2img.controlnet), "_residual_shapes", Counting())
        for _ in range(2):
            tiny_engine.generate(control, GenerationParams(**{**FAST, "steps": 4}), seeds=[1])
        assert len(writes) == 1

    def test_inactive_steps_skip_the_controlnet_without_changing_images(self, tiny_engine, control):
        net = tiny_engine.txt2img.controlnet
        calls = {"real": 0}
        original = type(net).__mro__[1].forward

        def counting(self, *args, **kwargs):
            calls["real"] += 1
            return original(self, *args, **kwargs)

        params = GenerationParams(**{**FAST, "steps": 8, "control_start": 0.5})
        type(net).__mro__[1].forward = counting
        try:
            skipped = tiny_engine.generate(control, params, seeds=[3])[0]
        finally:
            type(net).__mro__[1].forward = original
        # 8 steps, guidance off for the first 4: at most one real call learns the shapes, the rest skip.
        assert calls["real"] <= 5
        full = GenerationParams(**{**FAST, "steps": 8, "control_start": 0.5, "conditioning_scale": 1.5})
        net._residual_shapes.clear()  # without learnt shapes every step runs the real network
        reference = tiny_engine.generate(control, full, seeds=[3])[0]
        assert np.abs(np.asarray(skipped, int) - np.asarray(reference, int)).max() <= 1


class TestConditioningEmbeddingOnce:
    def test_it_embeds_the_control_image_once_per_generation_with_the_same_images(self, tiny_engine, control):
        net = tiny_engine.txt2img.controlnet
        keys = list(net.state_dict())
        calls = []
        hook = net.controlnet_cond_embedding.register_forward_hook(lambda *args: calls.append(1))
        params = GenerationParams(**{**FAST, "steps": 6, "control_start": 0.0})
        try:
            once = tiny_engine.generate(control, params, seeds=[4, 5])
            assert len(calls) == 1  # 6 ControlNet steps, one embedding
            again = tiny_engine.generate(control, params, seeds=[4, 5])
            assert len(calls) == 2  # a new generation, a new control tensor: embedded again
            net.embed_once = False
            every_step = tiny_engine.generate(control, params, seeds=[4, 5])
        finally:
            net.embed_once = True
            hook.remove()
        assert len(calls) == 2 + 6
        assert [im.tobytes() for im in once] == [im.tobytes() for im in again] == [im.tobytes() for im in every_step]
        # the embedding module is back in its place: weights load and save under their own names
        assert list(net.state_dict()) == keys and any(k.startswith("controlnet_cond_embedding.") for k in keys)

    def test_a_compiled_network_takes_the_embedding_as_given(self, tiny_engine):
        import copy

        import torch
        import torch._dynamo

        net = copy.deepcopy(tiny_engine.txt2img.controlnet)
        args = TestControlNetCompiledBody.inputs()
        with torch.no_grad():
            net.embed_once = False
            want_down, want_mid = net(*args, conditioning_scale=1.5, return_dict=False)
            net.embed_once = True
            torch._dynamo.reset()
            graphs = TestControlNetCompiledBody.counting_compile(net)
            for _ in range(2):
                down, mid = net(*args, conditioning_scale=1.5, return_dict=False)
        torch._dynamo.reset()
        assert len(graphs) == 1 and torch.allclose(mid, want_mid, atol=1e-5)
        assert all(torch.allclose(got, want, atol=1e-5) for got, want in zip(down, want_down, strict=True))


class TestControlNetCompiledBody:
    """`compile_for_cuda` compiles a QRControlNet's network at scale 1 and scales outside the graph."""

    @pytest.fixture
    def net(self, tiny_engine):
        import copy

        import torch._dynamo

        torch._dynamo.reset()
        yield copy.deepcopy(tiny_engine.txt2img.controlnet)
        torch._dynamo.reset()

    @staticmethod
    def inputs(batch: int = 2):
        import torch

        torch.manual_seed(0)
        return (torch.randn(batch, 4, 16, 16), 10, torch.randn(batch, 77, 32), torch.randn(batch, 3, 128, 128))

    @staticmethod
    def counting_compile(net) -> list:
        graphs: list = []

        def backend(graph, _example_inputs):
            graphs.append(graph)
            return graph.forward

        net.compile_body(backend=backend, dynamic=False)
        return graphs

    def test_every_conditioning_scale_runs_one_graph_and_the_networks_residuals(self, net):
        import torch

        graphs = self.counting_compile(net)
        args = self.inputs()
        for scale in (1.5, 1.3, 0.8, 1.0):
            with torch.no_grad():
                down, mid = net(*args, conditioning_scale=scale, return_dict=False)
                net.eager = True
                want_down, want_mid = net(*args, conditioning_scale=scale, return_dict=False)
                net.eager = False
            assert torch.equal(mid, want_mid)  # x * 1 * s is x * s, bit for bit
            assert all(torch.equal(got, want) for got, want in zip(down, want_down, strict=True))
        assert len(graphs) == 1  # a graph with the scale inside recompiled for each new value (seen on an H200)

    def test_eager_modules_draws_with_the_network_and_compiles_nothing(self, net):
        import types

        import torch

        graphs = self.counting_compile(net)
        pipe = types.SimpleNamespace(unet=object(), controlnet=net, vae=types.SimpleNamespace(decoder=object()))
        with torch.no_grad(), diffusion.eager_modules(pipe):
            assert pipe.controlnet is net and net.eager
            net(*self.inputs(3), conditioning_scale=1.5, return_dict=False)
        assert graphs == [] and net.eager is False
        with torch.no_grad():
            net(*self.inputs(3), conditioning_scale=1.5, return_dict=False)
        assert len(graphs) == 1
