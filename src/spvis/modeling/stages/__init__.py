"""Training stages: ``<stage>_stage.compute_losses(model, images, targets, clip_len) -> weighted loss dict``."""
