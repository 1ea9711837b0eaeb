"""The llmops services, each runnable alone as `python -m services.<name>`."""
