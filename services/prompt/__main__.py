from llmops.core.server import run
from services.prompt.server import build

run("prompt", build)
