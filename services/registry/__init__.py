"""The model registry service."""
