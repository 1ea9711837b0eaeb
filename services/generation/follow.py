"""Following registry aliases: when an alias a route sends traffic to moves, the new version is
loaded on its model server first and only then does traffic switch, so requests in flight on
the old version finish there and no request waits for a load."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import grpc

from llmops.api.registry.v1 import registry_pb2 as rpb
from llmops.core.model_files import ModelFiles
from services.generation.backends import preload
from services.generation.upstream import Upstream

log = logging.getLogger(__name__)
LOAD_TIMEOUT_S = 300.0


class AliasFollower:
    def __init__(self, registry_stub, models: ModelFiles, http: Upstream,
                 followed: Callable[[], set[str]], server_for: Callable[[str], str], token: str = ""):
        self._stub = registry_stub
        self._models = models
        self._http = http
        self._followed = followed
        self._server_for = server_for
        self._token = token
        self.switches = 0

    async def run(self) -> None:
        """Watch forever, resuming from the last event seen after any interruption."""
        cursor, backoff = 0, 0.5
        while True:
            try:
                stream = self._stub.WatchEvents(rpb.WatchEventsRequest(
                    after_sequence=cursor, types=[rpb.EVENT_TYPE_ALIAS_SET, rpb.EVENT_TYPE_ALIAS_DELETED]),
                    timeout=None)
                async for msg in stream:
                    backoff = 0.5
                    cursor = max(cursor, msg.event.sequence)
                    await self._on_event(msg.event)
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                log.warning("registry event stream interrupted (%s); resuming in %.1f s", exc.code().name, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    async def _on_event(self, event: rpb.Event) -> None:
        model_id = event.model.removeprefix("models/")
        ref = f"{model_id}@{event.alias}"
        if ref not in self._followed():
            self._models.forget(ref)
            return
        if event.type == rpb.EVENT_TYPE_ALIAS_DELETED:
            self._models.forget(ref)
            return
        version = await self._stub.GetModelVersion(rpb.GetModelVersionRequest(name=f"{model_id}@{event.version}"))
        if not await preload(self._http, self._server_for(model_id), version.name, self._token, LOAD_TIMEOUT_S):
            log.warning("model server could not preload %s; switching anyway", version.name)
        self._models.pin(ref, version)
        self.switches += 1
        log.info("%s now serves %s", ref, version.name)
