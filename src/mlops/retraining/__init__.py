"""Retraining on evidence: a drift or live-quality alarm, a contract's schedule or an approver asks;
gates (cooldown, new labelled rows) decide; the training set (last accepted dataset + labelled
traffic since) is written under datasets/ so the dataset gate, training and promotion judge it
exactly like an upload."""
