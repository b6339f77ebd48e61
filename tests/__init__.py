"""Test suite of embedtrack and ctc."""
