from llmops.core.server import run
from services.feedback.server import build

run("feedback", build)
