"""qart's framework-free ML/QR core: no Django imports, no environment reads (the Django layer passes settings in).

Three layers, each importing only the ones before it (tests/generator/core/test_boundary.py proves it):
- `codes`: QR codes themselves: encoding, phone-like captures, decoders, the scan verifier, repair, images, downloads.
- `engines`: what draws candidates: the diffusion engines (parameters, loading, devices, CUDA), the tiny test model,
  the aesthetic predictor, best-of-N ranking and the CPU halftone engine.
- `evals`: measuring the above: parameter grids, sweep statistics, plots, agreement with human scan labels.
"""
