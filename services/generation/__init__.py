"""Generation: one governed gateway over model servers and external OpenAI-compatible providers
(routes, canary splits, fallback, credentials by reference, usage accounting and limits)."""
