"""SPVIS: video instance segmentation with a Progressive Tracker and Joint Feature-Preserving refinement."""

__version__ = "0.1.0"
