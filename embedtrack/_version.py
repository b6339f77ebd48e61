"""The package version, in a module below every other so that any module may read it."""

__version__ = "0.1.0"
