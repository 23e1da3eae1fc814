"""SD1.5's component configs at full size and at toy size, for the GPU benchmarks (bench/gpu.py, bench/gpu_probe.py).

Full size follows runwayml/stable-diffusion-v1-5's unet/vae/text_encoder config.json; QR Code Monster v2 is an
SD1.5 ControlNet with the same blocks. The benchmarks build every component from these with seeded random
weights: speed does not depend on weight values, and the device machine cannot download weights.
"""

# sample_size 96 = 768 px / 8.
SD15 = dict(
    size=768,
    steps=25,
    unet=dict(
        sample_size=96, in_channels=4, out_channels=4, center_input_sample=False, flip_sin_to_cos=True,
        freq_shift=0, down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, block_out_channels=(320, 640, 1280, 1280),
        layers_per_block=2, downsample_padding=1, mid_block_scale_factor=1, act_fn="silu", norm_num_groups=32,
        norm_eps=1e-5, cross_attention_dim=768, attention_head_dim=8,
    ),
    controlnet=dict(
        in_channels=4, conditioning_channels=3, flip_sin_to_cos=True, freq_shift=0,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",), block_out_channels=(320, 640, 1280, 1280),
        layers_per_block=2, downsample_padding=1, mid_block_scale_factor=1, act_fn="silu", norm_num_groups=32,
        norm_eps=1e-5, cross_attention_dim=768, attention_head_dim=8,
        conditioning_embedding_out_channels=(16, 32, 96, 256),
    ),
    vae=dict(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
        act_fn="silu", latent_channels=4, norm_num_groups=32, sample_size=768, scaling_factor=0.18215,
    ),
    text=dict(
        vocab_size=49408, hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
        max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768,
    ),
    clip_vision=dict(
        hidden_size=1024, intermediate_size=4096, num_attention_heads=16, num_hidden_layers=24, image_size=224,
        patch_size=14, projection_dim=768,
    ),
)
# Toy sizes for the CPU dry run (generator/core/engines/tiny.py's shapes, with cross-attention in both blocks).
TINY = dict(
    size=256,
    steps=4,
    unet=dict(
        sample_size=32, in_channels=4, out_channels=4, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), block_out_channels=(16, 32), layers_per_block=1,
        cross_attention_dim=32, attention_head_dim=4, norm_num_groups=8,
    ),
    controlnet=dict(
        in_channels=4, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), block_out_channels=(16, 32),
        layers_per_block=1, cross_attention_dim=32, attention_head_dim=4, norm_num_groups=8,
        conditioning_embedding_out_channels=(8, 8, 8, 8),
    ),
    vae=dict(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 8, 8, 8), layers_per_block=1,
        latent_channels=4, norm_num_groups=4, sample_size=256,
    ),
    text=dict(
        vocab_size=49408, hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
        max_position_embeddings=77, projection_dim=32,
    ),
    clip_vision=dict(
        hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, image_size=224,
        patch_size=14, projection_dim=768,
    ),
)
SCHEDULER = dict(
    num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
    clip_sample=False, set_alpha_to_one=False, steps_offset=1,
)


class Components:
    """Seeded random weights for every SD1.5 component at `cfg`'s size, kept as fp32 state dicts on the CPU, and the
    pipelines built from them: the one setup bench/gpu.py's `Bench` and bench/gpu_probe.py's `Probe` share."""

    def __init__(self, cfg: dict, device: str):
        import tempfile
        from pathlib import Path

        import torch
        from transformers import CLIPTokenizer

        from generator.core.engines.tiny import write_tokenizer

        self.cfg, self.device, self.torch = cfg, device, torch
        tokdir = Path(tempfile.mkdtemp(prefix="qart-tok-"))
        write_tokenizer(tokdir)
        self.tokenizer = CLIPTokenizer.from_pretrained(tokdir)
        self.parameters_millions: dict = {}
        self.masters = self._build_masters()

    def _build_masters(self) -> dict:
        torch = self.torch
        from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
        from transformers import CLIPTextConfig, CLIPTextModel

        torch.manual_seed(0)
        with torch.device(self.device):
            unet = UNet2DConditionModel(**self.cfg["unet"])
            controlnet = ControlNetModel(**self.cfg["controlnet"])
            # diffusers zero-initialises the ControlNet's output ("zero") convolutions and the last conv of its
            # conditioning embedding, as for training from scratch: the ControlNet would add exact zeros and
            # ignore the QR image, and the image check could not see a ControlNet difference. Trained weights
            # are not zero; give them the default random init.
            for module in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block,
                           controlnet.controlnet_cond_embedding.conv_out]:
                module.reset_parameters()
            vae = AutoencoderKL(**self.cfg["vae"])
            self.text_config = CLIPTextConfig(
                **self.cfg["text"], bos_token_id=self.tokenizer.bos_token_id,
                eos_token_id=self.tokenizer.eos_token_id, pad_token_id=self.tokenizer.pad_token_id)
            text = CLIPTextModel(self.text_config)
        masters = {}
        for name, module in (("unet", unet), ("controlnet", controlnet), ("vae", vae), ("text", text)):
            masters[name] = {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
            self.parameters_millions[name] = round(sum(p.numel() for p in module.parameters()) / 1e6, 1)
        return masters

    def module(self, cls, name: str, dtype, config=None, device: str | None = None):
        """One component with the master weights, in `dtype`, eval mode, no gradients."""
        torch = self.torch
        with torch.device(device or self.device):
            module = cls(config) if config is not None else cls(**self.cfg[name])
        module.load_state_dict(self.masters[name])
        return module.to(dtype=dtype).eval().requires_grad_(False)

    def pipeline(self, dtype, skip: bool, device: str | None = None):
        """A StableDiffusionControlNetPipeline of the master weights (`skip`: the product's skipping ControlNet)."""
        from diffusers import (
            AutoencoderKL,
            ControlNetModel,
            DDIMScheduler,
            StableDiffusionControlNetPipeline,
            UNet2DConditionModel,
        )
        from transformers import CLIPTextModel

        from generator.core.engines.controlnet import skipping_controlnet_class

        controlnet_class = skipping_controlnet_class() if skip else ControlNetModel
        return StableDiffusionControlNetPipeline(
            vae=self.module(AutoencoderKL, "vae", dtype, device=device),
            text_encoder=self.module(CLIPTextModel, "text", dtype, self.text_config, device=device),
            tokenizer=self.tokenizer,
            unet=self.module(UNet2DConditionModel, "unet", dtype, device=device),
            controlnet=self.module(controlnet_class, "controlnet", dtype, device=device),
            scheduler=DDIMScheduler(**SCHEDULER), safety_checker=None, feature_extractor=None,
            requires_safety_checker=False,
        )


def warm_as_drawn(engine, calls, batches) -> None:
    """Mark, on a compiled engine, the shapes a benchmark draws as warm: the benchmarks warm up with their own calls
    (fewer than the worker's `diffusion.warm_up_engine`, which also compiles image-to-image), and `Engine.generate`
    draws any shape not marked eagerly."""
    from generator.core.engines import diffusion

    if engine.compiled:
        engine.warmed.update(diffusion.Shape.of(params, batch) for params in calls for batch in batches)

