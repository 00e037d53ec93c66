"""Domain code shared by every function of the MLOps suite (validation, training, registry,
inference, drift). Plain Python: no environment variables, no AWS clients outside `adapters`."""
