from llmops.core.server import run
from services.registry.server import build

run("registry", build)
