"""The GPU side: job contract, model registry, diffusers engine, images. Torch lives only here."""
