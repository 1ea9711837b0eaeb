from llmops.core.server import run
from services.pipeline.server import build

run("pipeline", build)
