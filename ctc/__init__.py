"""The Cell Tracking Challenge file format: read, write, validate, evaluate, statistics. No torch here."""
