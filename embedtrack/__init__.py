"""EmbedTrack: simultaneous cell segmentation and tracking (Löffler & Mikut)."""

__version__ = "0.1.0"
