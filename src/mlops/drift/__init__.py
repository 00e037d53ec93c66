"""Drift monitoring: captured inference traffic compared with the training baseline (PSI)."""
