"""The review web app, served by the feedback service over HTTP: a page for human reviewers (the
answers awaiting review, with their question and sources; thumbs, a 1-5 rating, a corrected
answer and a comment; keyboard shortcuts) and the small JSON API it calls.

The API runs the servicer's own methods (same checks, rate limit, idempotency and spans as the
gRPC API). A reviewer signs in with an API key whose role is reviewer or above; the page keeps it
in the tab's session storage and sends it as a bearer token, so there is no cookie to forge.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from llmops.api.feedback.v1 import feedback_pb2 as pb
from llmops.core import auth, http
from llmops.core.errors import InvalidArgument
from services.feedback.servicer import FeedbackServicer

STATIC = Path(__file__).resolve().parent / "static"
THUMBS = {"up": pb.THUMB_UP, "down": pb.THUMB_DOWN, None: pb.THUMB_UNSPECIFIED, "": pb.THUMB_UNSPECIFIED}
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "cache-control": "no-store",
}


def _inference_json(r: pb.InferenceRecord) -> dict:
    return {"request_id": r.request_id, "trace_id": r.trace_id, "pipeline": r.pipeline,
            "pipeline_version": r.pipeline_version, "model_version": r.model_version, "question": r.question,
            "answer": r.answer, "latency_ms": round(r.latency_ms, 1), "feedback_count": r.feedback_count,
            "create_time": r.create_time.ToJsonString(),
            "sources": [{"document_id": s.document_id, "chunk_id": s.chunk_id, "score": round(s.score, 4),
                         "text": s.text} for s in r.sources]}


# The role each HTTP endpoint needs (docs/security.md): the page itself and its static files are
# open (they hold no data); the API is the reviewers'. `/healthz` is open.
HTTP_POLICY = {("GET", "/api/me"): auth.Role.REVIEWER, ("GET", "/api/queue"): auth.Role.REVIEWER,
               ("POST", "/api/feedback"): auth.Role.REVIEWER}


class FeedbackBody(BaseModel):
    """What the page posts for one reviewed answer (types here; the servicer checks the values, as
    for gRPC callers)."""

    model_config = ConfigDict(strict=True, extra="forbid")
    request_id: str = ""
    thumb: Literal["up", "down", ""] | None = None
    rating: int = 0
    corrected_answer: str | None = None
    comment: str | None = None
    labels: list[str] = []
    idempotency_key: str | None = None


class ReviewApp:
    def __init__(self, servicer: FeedbackServicer, keys: auth.KeyStore, spans: http.ServerSpans):
        self._servicer = servicer
        edge = http.HttpEdge(keys, spans, HTTP_POLICY, headers=SECURITY_HEADERS)
        self.app = Starlette(routes=[
            Route("/", self.page, methods=["GET"]),
            Route("/static/{name}", self.static, methods=["GET"]),
            edge.route("GET", "/api/me", self.me, action="reviewing answers"),
            edge.route("GET", "/api/queue", self.queue, action="reviewing answers"),
            edge.route("POST", "/api/feedback", self.feedback, body=FeedbackBody, action="reviewing answers"),
            edge.healthz(),
        ], exception_handlers=edge.exception_handlers())

    async def page(self, request: Request) -> Response:
        return FileResponse(STATIC / "review.html", headers=SECURITY_HEADERS)

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ("review.js", "review.css"):
            return Response("not found", status_code=404)
        return FileResponse(STATIC / name, headers=SECURITY_HEADERS)

    @staticmethod
    async def me(call: http.HttpCall) -> dict:
        principal = call.rc.principal
        return {"name": principal.name, "role": principal.role.name.lower()}

    async def queue(self, call: http.HttpCall) -> dict:
        params = call.request.query_params
        try:
            limit = int(params.get("limit", "50"))
        except ValueError:
            raise InvalidArgument("limit must be a number", field="limit") from None
        resp = await self._servicer.ListInferences(pb.ListInferencesRequest(
            pipeline=params.get("pipeline", ""), awaiting_review=params.get("all") != "1",
            page_size=max(1, min(limit, 200))), None)
        return {"inferences": [_inference_json(r) for r in resp.inferences]}

    async def feedback(self, call: http.HttpCall) -> dict:
        data: FeedbackBody = call.body
        f = pb.Feedback(request_id=data.request_id, thumb=THUMBS[data.thumb], rating=data.rating,
                        corrected_answer=data.corrected_answer or "", comment=data.comment or "",
                        labels=data.labels, source=pb.FEEDBACK_SOURCE_REVIEWER)
        out = await self._servicer.CreateFeedback(pb.CreateFeedbackRequest(
            feedback=f, idempotency_key=data.idempotency_key or ""), None)
        return {"name": out.name, "request_id": out.request_id}
