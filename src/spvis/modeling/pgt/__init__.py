"""Progressive Tracker (PGT) parts: query alignment, denoising, track memory, gated reference, lifecycle.

Each part is switched on by a key under MODEL.TRACKER.PGT (or MODEL.TRACKER.NOISE_MODE); with every switch
off the tracker is exactly the DVIS referring tracker.
"""
