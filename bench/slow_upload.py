"""An upload slower than the unary deadline: a registry process with the default settings
(30 s unary deadline, 30 s idle limit for client streams) receives a file sent at a throttled
rate, so the whole upload takes longer than the deadline. Uploads are bounded by progress, so it
must succeed; the report gives its size, duration and rate, and the rate of the same file sent
at full speed in the same run (the baseline).

    python -m bench.slow_upload [--mb 200] [--seconds 60]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

from bench.harness import save
from llmops.api.registry.v1 import registry_pb2 as pb
from llmops.client import Client
from llmops.core import auth
from llmops.testing.services import ServiceProcess

CHUNK = 1024 * 1024


def _upload(client: Client, data: bytes, digest: str, pause_s: float) -> float:
    def requests():
        yield pb.UploadArtifactRequest(header=pb.UploadArtifactHeader(
            model="bench", path="weights.txt", sha256=digest, size_bytes=len(data)))
        for i in range(0, len(data), CHUNK):
            if pause_s:
                time.sleep(pause_s)
            yield pb.UploadArtifactRequest(chunk=data[i:i + CHUNK])

    start = time.monotonic()
    client.registry.stub.UploadArtifact(requests())
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="llmops-bench-"))
    key = auth.add_key(tmp / "keys.json", "bench", "editor")
    proc = ServiceProcess("registry", {"LLMOPS_HOME": str(tmp), "LLMOPS_REGISTRY_KEYS_FILE": str(tmp / "keys.json"),
                                       "LLMOPS_REGISTRY_ARTIFACT_ROOT": str(tmp / "artifacts")}, tmp).start()
    try:
        with Client({"registry": proc.address}, key) as client:
            client.registry.create_model("bench")
            slow = bytes(range(256)) * (args.mb * CHUNK // 256)
            fast = slow[:-1] + b"!"  # another digest: not deduplicated against the slow one
            fast_s = _upload(client, fast, hashlib.sha256(fast).hexdigest(), 0.0)
            pause = args.seconds / (len(slow) / CHUNK)
            slow_s = _upload(client, slow, hashlib.sha256(slow).hexdigest(), pause)
    finally:
        proc.terminate()
    report = {"benchmark": "slow_upload", "megabytes": args.mb, "unary_deadline_s": 30.0, "idle_limit_s": 30.0,
              "throttled": {"seconds": round(slow_s, 1), "mb_per_s": round(args.mb / slow_s, 2), "succeeded": True},
              "full_speed": {"seconds": round(fast_s, 2), "mb_per_s": round(args.mb / fast_s, 1)}}
    save("slow_upload", report, echo=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
