"""Test support shared by the tests and the benchmarks: start any service in a thread or as its
own process on a free loopback port (`ServerThread`, `ServiceProcess`), a whole RAG stack
(`RagStack`) or the prompt stack (`PromptStack`), keys for every role, a fake OpenAI-compatible
provider on loopback, and `wait_until` for conditions instead of fixed sleeps."""
