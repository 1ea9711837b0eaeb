"""The raw engine alone in its own process: the baseline `bench.generation` compares the service
with. Sharing the benchmark's process would make it share the GIL with the gRPC clients and the
registry there, and measure them rather than the engine.

    python -m bench.engine_worker FOLDER PROMPT TOKENS

Prints `ready`, then for each line read on stdin runs one request through the engine's scheduler
and prints `{"ttft_s": ..., "tokens": ...}`; ends at end of input."""

from __future__ import annotations

import json
import os
import sys
import threading
import time

from llmops.core import cpu

os.environ.update(cpu.torch_thread_env())  # as the model server sets them, before torch loads


def main() -> int:
    from services.modelserver.engine import Engine, Job
    from services.modelserver.sampling import Sampling
    from services.modelserver.scheduler import Scheduler

    folder, prompt, tokens = sys.argv[1], sys.argv[2], int(sys.argv[3])
    engine = Engine.load(folder, "raw")
    scheduler = Scheduler(engine)
    ids = engine.encode(prompt)
    print("ready", flush=True)
    for _ in sys.stdin:
        done, first, out = threading.Event(), [0.0], [0]
        start = time.perf_counter()

        def emit(kind, payload, start=start, done=done, first=first, out=out):
            if kind == "delta" and not first[0]:
                first[0] = time.perf_counter() - start
            if kind == "done":
                out[0] = payload.output_tokens
                done.set()

        scheduler.submit([Job(ids, Sampling(max_tokens=tokens), emit)])
        done.wait()
        print(json.dumps({"ttft_s": first[0], "tokens": out[0]}), flush=True)
    scheduler.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
