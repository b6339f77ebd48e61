"""Errors of the embedtrack package that the CLI turns into one clear message."""

from __future__ import annotations


class EmbedTrackError(ValueError):
    """Base class for user-facing errors (bad model folder, unknown preset, bad config...)."""


class ModelError(EmbedTrackError):
    """A model folder or name cannot be used (unknown name, config/weights mismatch)."""


class ConfigError(EmbedTrackError):
    """A configuration has unknown keys or invalid values."""
