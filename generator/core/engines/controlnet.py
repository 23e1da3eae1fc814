"""The QR ControlNet qart runs: no work on the steps its guidance is off, one compiled graph for every scale.

    controlnet = skipping_controlnet_class().from_pretrained(...)    # what `loading.load_engine` does
    controlnet.compile_body(mode=None, dynamic=False)                # what `cuda.compile_for_cuda` does
"""

from __future__ import annotations


def skipping_controlnet_class():
    from diffusers import ControlNetModel

    class QRControlNet(ControlNetModel):
        """A ControlNet that does no work while its guidance is off, and compiles once for every conditioning scale.

        diffusers still runs the ControlNet on steps outside [control_start, control_end] and multiplies
        its residuals by zero: with start 0.25 that is a quarter of all ControlNet compute spent on
        zeros. Here those steps return zero residuals of the right shapes (learnt from the first real
        call at that input shape), which the UNet adds exactly as it would add the multiplied ones.

        Compiled (`compile_body`, what `cuda.compile_for_cuda` does), only the network runs in the compiled graph,
        always at scale 1; the residuals are multiplied by the job's scale here, outside it (exactly the product
        diffusers computes: x * 1 * s = x * s). A graph compiled with the scale inside guards on its value, so each
        new conditioning scale a user picked recompiled the ControlNet for minutes in the middle of a job.
        """

        _residual_shapes: dict = {}
        _compiled_body = None  # `compile_body`: the network, compiled
        eager = False  # `diffusion.eager_modules` sets it: draw with the network itself, compile nothing

        def compile_body(self, **compile_kwargs) -> None:
            """Compile the network (at conditioning scale 1) with `torch.compile(**compile_kwargs)`."""
            import torch

            self._compiled_body = torch.compile(super().forward, **compile_kwargs)

        def forward(self, sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale=1.0,
                    *args, **kwargs):
            import torch

            key = (tuple(sample.shape), sample.dtype, str(sample.device))
            shapes = self._residual_shapes.get(key)
            guess_mode = kwargs.get("guess_mode", False)
            if conditioning_scale == 0 and shapes is not None and not guess_mode:
                # A list, as ControlNetModel returns: another type would make torch.compile recompile the UNet.
                down = [torch.zeros(s, dtype=sample.dtype, device=sample.device) for s in shapes[0]]
                mid = torch.zeros(shapes[1], dtype=sample.dtype, device=sample.device)
                return (down, mid) if not kwargs.get("return_dict", True) else _output(down, mid)
            compiled = self._compiled_body is not None and not self.eager
            body = self._compiled_body if compiled else super().forward
            # Scaling after the network equals diffusers' scaling inside it unless the residuals are pooled (mean of
            # scaled values) or scaled per level (guess mode): those keep the scale inside.
            scale_outside = (compiled and not guess_mode and not self.config.global_pool_conditions
                             and not isinstance(conditioning_scale, torch.Tensor))
            out = body(sample, timestep, encoder_hidden_states, controlnet_cond,
                       1.0 if scale_outside else conditioning_scale, *args, **kwargs)
            down, mid = (out if isinstance(out, tuple) else (out.down_block_res_samples, out.mid_block_res_sample))
            if shapes is None:  # once: compiled graphs guard on this dict, and writing it again would recompile them
                self._residual_shapes[key] = (tuple(tuple(d.shape) for d in down), tuple(mid.shape))
            if scale_outside and conditioning_scale != 1:
                down, mid = [d * conditioning_scale for d in down], mid * conditioning_scale
                return (down, mid) if not kwargs.get("return_dict", True) else _output(down, mid)
            return out

    def _output(down, mid):
        from diffusers.models.controlnets.controlnet import ControlNetOutput

        return ControlNetOutput(down_block_res_samples=down, mid_block_res_sample=mid)

    return QRControlNet
