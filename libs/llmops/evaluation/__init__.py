"""Datasets for tuning and evaluation (Delta tables from feedback exports, JSONL artifacts in the
registry) and the exact-match evaluation shared by tuning jobs and `llmops models compare`."""
