"""Visualisation: instance overlays on frames and mp4 writing (used by inference and `spvis data show`)."""
