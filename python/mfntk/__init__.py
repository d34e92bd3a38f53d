"""mfntk: two-layer neural networks as interacting particle systems."""
