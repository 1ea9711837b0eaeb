from llmops.core.server import run
from services.generation.server import build

run("generation", lambda config, keys, provider: build(config, keys, provider))
