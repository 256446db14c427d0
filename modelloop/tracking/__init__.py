"""Run tracking: the client, buffered metrics, context capture and dataset fingerprints."""
