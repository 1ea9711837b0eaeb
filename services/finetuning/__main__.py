from llmops.core.server import run
from services.finetuning.server import build

run("finetuning", build)
