"""Thread settings for the processes that run torch (model server, embeddings, fine-tuning).

OpenMP's default wait policy keeps idle worker threads spinning for a while after each parallel
region; on a small machine those spinning threads take the cores another busy process needs, and
both slow down (measured: a model server fell from ~390 to ~57 tokens/s next to one CPU-bound
process, and came back to ~270 with PASSIVE). So every torch process this platform starts waits
passively, with one OpenMP thread per core it may run on, unless the environment already says
otherwise (`LLMOPS_TORCH_THREADS` sets the count). When nobody set a count, the model server
measures whether one thread decodes a model faster than all of them (small models do: waking
sleeping threads for each small operation costs more than they save) and keeps the faster.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


def cores() -> int:
    """Cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


TUNE = "LLMOPS_TORCH_THREADS_TUNE"  # "1": nobody chose the count; a model server may measure a better one


def torch_thread_env(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The variables to add to a torch process's environment (read by torch as it imports)."""
    threads = environ.get("LLMOPS_TORCH_THREADS") or str(cores())
    wanted = {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    out = {k: v for k, v in wanted.items() if k not in environ}
    if not any(k in environ for k in ("LLMOPS_TORCH_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")):
        out.setdefault(TUNE, environ.get(TUNE, "1"))
    return out


def may_tune_threads(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the thread count is ours to choose (nobody set one by hand)."""
    return environ.get(TUNE) == "1"
