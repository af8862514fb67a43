"""Checkpoints: our safetensors format, official DVIS/Mask2Former import, reference-bundle verification."""

from spvis.checkpoints.io import load_weights, load_weights_into, save_weights

__all__ = ["save_weights", "load_weights", "load_weights_into"]
