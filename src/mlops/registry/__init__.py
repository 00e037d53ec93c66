"""The model registry: versions, statuses, the production alias, audit trail."""
