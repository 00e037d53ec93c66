"""Models built elsewhere, imported under the same gates as trained ones."""
