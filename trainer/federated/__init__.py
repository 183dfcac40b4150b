"""Federated SAM2 fine-tuning with Flower: `python -m trainer federated` (see pipeline.py, server.py, client.py)."""
