"""`python -m services.modelserver`: runs `bentoml serve` for the model server on loopback (or
`LLMOPS_MODELSERVER_HOST`), waits until BentoML reports ready, writes the ready file, and passes
SIGTERM on so BentoML stops gracefully."""

from __future__ import annotations

import logging
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from llmops.core import cpu, localenv
from llmops.core.config import from_env
from llmops.core.server import setup_logging
from services.modelserver.config import ModelServerConfig

log = logging.getLogger("llmops.modelserver")
ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 120.0


def _ready(url: str, context: ssl.SSLContext | None) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=1, context=context) as resp:
            return resp.status == 200
    except OSError:
        return False


def main() -> int:
    setup_logging("modelserver")
    config = from_env(ModelServerConfig, "LLMOPS_MODELSERVER")
    port = config.port or localenv.free_port(config.host)
    home = localenv.home()
    env = {**os.environ, **cpu.torch_thread_env(), "BENTOML_DO_NOT_TRACK": "true",
           "BENTOML_HOME": str(home / "bentoml"), "LLMOPS_MODELSERVER_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "bentoml", "serve", "services.modelserver.service:ModelServer",
                             "--host", config.host, "--port", str(port), "--working-dir", str(ROOT)], env=env)
    stop = {"signal": 0}

    def forward(signum, _frame):
        stop["signal"] = signum
        proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    tls = config.tls()
    url = f"{'https' if tls else 'http'}://{config.host}:{port}"
    # probing our own child: its certificate need not name the address it was started on
    context = ssl._create_unverified_context() if tls else None
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _ready(url, context):
        if proc.poll() is not None or stop["signal"]:
            return proc.wait() or 1
        if time.monotonic() > deadline:
            log.error("BentoML did not become ready within %.0f s", START_TIMEOUT_S)
            proc.terminate()
            return 1
        time.sleep(0.1)
    if config.ready_file:
        tmp = Path(config.ready_file + ".tmp")
        tmp.write_text(f"{config.host}:{port}\n")
        os.replace(tmp, config.ready_file)
    log.info("modelserver serving on %s", url)
    code = proc.wait()
    return 0 if stop["signal"] else code


if __name__ == "__main__":
    sys.exit(main())
