"""What draws candidates: diffusion engines (params, devices, cuda, diffusion, loading), tiny, aesthetics, ranking,
halftone. Imports `generator.core.codes`, never `generator.core.evals`."""
