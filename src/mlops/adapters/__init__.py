"""The only code that imports boto3. Each adapter implements a port from mlops.ports."""
