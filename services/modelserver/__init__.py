"""Model server: a BentoML service running causal LMs from the registry with DeepSpeed-inference,
batching concurrent requests."""
