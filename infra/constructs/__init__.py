"""One construct per capability; shared resources are passed in as arguments."""
