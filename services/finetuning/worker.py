"""A tuning job's worker process: `python -m services.finetuning.worker JOB_DIR`.

The job folder holds `spec.json` (a RunSpec) and `dataset.jsonl` (one chat row per line); the
worker appends events to `events.jsonl` (one JSON object per line: started, progress, checkpoint,
resumed, evaluated, finished, cancelled, failed) and leaves the model in `output/`. Started
again on the same folder it resumes from the last complete checkpoint; the event log is first
cut back to that checkpoint, so the steps it records have no gaps and no repeats. SIGTERM stops
it at the next step boundary (a cancel). On several GPUs the DeepSpeed launcher starts one worker
per GPU (`deepspeed --num_gpus N --no_local_rank --module services.finetuning.worker JOB_DIR`);
rank 0 keeps the log and writes the output.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path

from services.finetuning.training import RunSpec, Stopped, train


class EventLog:
    def __init__(self, path: Path):
        self._path = path

    def cut_back(self, checkpoint_dir: Path) -> None:
        """Drop events after the last complete checkpoint (the steps a resumed run will redo)."""
        if not self._path.exists():
            return
        latest = checkpoint_dir / "latest"
        step = int(latest.read_text().strip().removeprefix("step-")) if latest.exists() else 0
        kept = [line for line in self._path.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= step
                and json.loads(line).get("type") in ("started", "progress", "checkpoint", "resumed")]
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        tmp.replace(self._path)

    def __call__(self, event: dict) -> None:
        event = {"time": time.time(), **event}
        with self._path.open("a") as f:
            f.write(json.dumps(event) + "\n")


def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when the service that started it dies, so a restarted service
    never meets a stray worker on the same folder."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(job_dir: Path) -> int:
    _die_with_parent()
    stop = {"requested": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(requested=True))
    spec = RunSpec(**json.loads((job_dir / "spec.json").read_text()))
    rows = [json.loads(line)["messages"] for line in (job_dir / "dataset.jsonl").read_text().splitlines() if line]
    if int(os.environ.get("RANK", "0")) != 0:  # under the DeepSpeed launcher: rank 0 keeps the log
        train(spec, rows, job_dir, lambda e: None, lambda: stop["requested"])
        return 0
    log = EventLog(job_dir / "events.jsonl")
    log.cut_back(job_dir / "checkpoints")
    try:
        metrics = train(spec, rows, job_dir, log, lambda: stop["requested"])
    except Stopped as exc:
        log({"type": "cancelled", "message": str(exc)})
        return 3
    except Exception as exc:  # noqa: BLE001 - the service reads why from the log
        log({"type": "failed", "message": f"{type(exc).__name__}: {exc}"[:2000]})
        traceback.print_exc()
        return 1
    (job_dir / "result.json").write_text(json.dumps({"metrics": metrics}))
    log({"type": "finished", "metrics": metrics})
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
