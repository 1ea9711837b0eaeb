from llmops.core.server import run
from services.retrieval.server import build

run("retrieval", build)
