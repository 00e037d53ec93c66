"""Local mode: the synthesized stack running on one machine (moto server + in-process handlers)."""
