"""Batch scoring: a file under batch/<model>/ scored in parts with one verified model version."""
