"""What draws candidates: diffusion engines (parameters, devices, cuda, diffusion, loading), tiny, aesthetics, ranking,
halftone. Imports `generator.core.codes`, never `generator.core.evals`."""
