"""The models a server holds in memory: loaded on first use (one load per version however many
requests ask at once), kept least-recently-used up to `max_loaded`, never evicted while serving.
A moved alias therefore has the old and the new version side by side until the old one idles."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass

from llmops.core import heap
from services.modelserver.engine import Engine
from services.modelserver.fetch import ModelFetcher
from services.modelserver.scheduler import Scheduler

log = logging.getLogger(__name__)
CONCRETE = re.compile(r"^(models/[^/]+/versions/\d+|[^@/]+@\d+)$")


@dataclass
class Loaded:
    version: str
    engine: Engine
    scheduler: Scheduler
    loaded_at: float


class ModelPool:
    def __init__(self, fetcher: ModelFetcher, *, max_loaded: int = 2, max_batch: int = 8, max_waiting: int = 4):
        self._fetcher = fetcher
        self._max_loaded = max_loaded
        self._max_batch = max_batch
        self._max_waiting = max_waiting
        self._models: OrderedDict[str, Loaded] = OrderedDict()
        self._loading: dict[str, asyncio.Future] = {}

    async def get(self, ref: str) -> Loaded:
        """The loaded model for `ref`; a concrete version is looked up without the registry."""
        if CONCRETE.match(ref):
            key = ref if ref.startswith("models/") else "models/{}/versions/{}".format(*ref.split("@"))
            hit = self._models.get(key)
            if hit is not None:
                self._models.move_to_end(key)
                return hit
        return await self._load(ref)

    async def _load(self, ref: str) -> Loaded:
        pending = self._loading.get(ref)
        if pending is not None:
            return await asyncio.shield(pending)
        fut = asyncio.get_running_loop().create_future()
        self._loading[ref] = fut
        try:
            version, folder = await asyncio.to_thread(self._fetcher.fetch, ref)
            loaded = self._models.get(version)
            if loaded is None:
                engine = await asyncio.to_thread(Engine.load, folder, version)
                heap.freeze_long_lived()  # a full collection over torch and the model stalls every request
                loaded = Loaded(version, engine, Scheduler(engine, self._max_batch, self._max_waiting), time.time())
                self._models[version] = loaded
                self._evict()
            self._models.move_to_end(version)
            fut.set_result(loaded)
            return loaded
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: waiters get it, nobody else needs to
            raise
        finally:
            del self._loading[ref]

    def _evict(self) -> None:
        for version in list(self._models):
            if len(self._models) <= self._max_loaded:
                return
            loaded = self._models[version]
            if loaded.scheduler.busy == 0:
                log.info("unloading %s (least recently used)", version)
                loaded.scheduler.close()
                del self._models[version]

    def describe(self) -> list[dict]:
        return [{**m.engine.info(), "version": m.version, "busy": m.scheduler.busy, "steps": m.scheduler.steps,
                 "joins": m.scheduler.joins, "refused": m.scheduler.refused,
                 "threads": {"decode": m.engine.threads, "prefill": m.engine.prefill_threads},
                 "last_cancel_ms": None if m.engine.last_cancel_s is None else m.engine.last_cancel_s * 1e3,
                 "last_cancel_tokens": m.engine.last_cancel_tokens}
                for m in self._models.values()]

    @property
    def busy(self) -> int:
        return sum(m.scheduler.busy for m in self._models.values())

    def close(self) -> None:
        for m in self._models.values():
            m.scheduler.close()
        self._fetcher.close()
