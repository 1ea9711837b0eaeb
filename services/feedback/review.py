"""The review web app, served by the feedback service over HTTP: a page for human reviewers (the
answers awaiting review, with their question and sources; thumbs, a 1-5 rating, a corrected
answer and a comment; keyboard shortcuts) and the small JSON API it calls.

The API runs the servicer's own methods (same checks, rate limit, idempotency and spans as the
gRPC API). A reviewer signs in with an API key whose role is reviewer or above; the page keeps it
in the tab's session storage and sends it as a bearer token, so there is no cookie to forge.
"""

from __future__ import annotations

import json
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from llmops.core import auth, http
from llmops.core.errors import DomainError, InvalidArgument
from llmops.feedback.v1 import feedback_pb2 as pb
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


class ReviewApp:
    def __init__(self, servicer: FeedbackServicer, keys: auth.KeyStore, spans: http.ServerSpans):
        self._servicer = servicer
        self._keys = keys
        self._spans = spans
        self.app = Starlette(routes=[
            Route("/", self.page, methods=["GET"]),
            Route("/static/{name}", self.static, methods=["GET"]),
            Route("/api/me", self.me, methods=["GET"]),
            Route("/api/queue", self.queue, methods=["GET"]),
            Route("/api/feedback", self.feedback, methods=["POST"]),
            Route("/healthz", self.healthz, methods=["GET"]),
        ])

    async def healthz(self, request: Request) -> Response:
        return Response("ok", media_type="text/plain")

    async def page(self, request: Request) -> Response:
        return FileResponse(STATIC / "review.html", headers=SECURITY_HEADERS)

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ("review.js", "review.css"):
            return Response("not found", status_code=404)
        return FileResponse(STATIC / name, headers=SECURITY_HEADERS)

    async def _call(self, request: Request, route: str, handler) -> Response:
        """Authenticate as reviewer (or above), then run `handler` as that caller in a span."""
        span, ctx = self._spans.start(request.method, route, request.headers)
        try:
            principal, key = http.authenticate(request.headers, self._keys, HTTP_POLICY[request.method, route],
                                               "reviewing answers")
            span.set_attribute("enduser.id", principal.name)
            with http.RequestContext(principal, key, ctx, span).active():
                body = await handler(principal)
        except DomainError as exc:
            status = http.http_status(exc)
            http.ServerSpans.finish(span, status, exc.message)
            headers = {**SECURITY_HEADERS, **http.trace_headers(span)}
            if exc.retry_after_s is not None:
                headers["retry-after"] = str(max(1, round(exc.retry_after_s)))
            return JSONResponse({"error": exc.message, "code": exc.code}, status_code=status, headers=headers)
        http.ServerSpans.finish(span, 200)
        return JSONResponse(body, headers={**SECURITY_HEADERS, **http.trace_headers(span)})

    async def me(self, request: Request) -> Response:
        async def handler(principal: auth.Principal) -> dict:
            return {"name": principal.name, "role": principal.role.name.lower()}

        return await self._call(request, "/api/me", handler)

    async def queue(self, request: Request) -> Response:
        async def handler(principal: auth.Principal) -> dict:
            try:
                limit = int(request.query_params.get("limit", "50"))
            except ValueError:
                raise InvalidArgument("limit must be a number") from None
            all_ = request.query_params.get("all") == "1"
            resp = await self._servicer.ListInferences(pb.ListInferencesRequest(
                pipeline=request.query_params.get("pipeline", ""), awaiting_review=not all_,
                page_size=max(1, min(limit, 200))), None)
            return {"inferences": [_inference_json(r) for r in resp.inferences]}

        return await self._call(request, "/api/queue", handler)

    async def feedback(self, request: Request) -> Response:
        async def handler(principal: auth.Principal) -> dict:
            try:
                data = json.loads(await request.body())
            except ValueError:
                raise InvalidArgument("the body is not valid JSON") from None
            if not isinstance(data, dict):
                raise InvalidArgument("the body must be a JSON object")
            thumb = data.get("thumb")
            if thumb not in THUMBS:
                raise InvalidArgument("thumb must be up, down or empty")
            labels = data.get("labels") or []
            rating = data.get("rating") or 0
            if not isinstance(labels, list) or not isinstance(rating, int):
                raise InvalidArgument("labels must be a list and rating a number")
            f = pb.Feedback(request_id=str(data.get("request_id", "")), thumb=THUMBS[thumb], rating=rating,
                            corrected_answer=str(data.get("corrected_answer") or ""),
                            comment=str(data.get("comment") or ""), labels=[str(x) for x in labels],
                            source=pb.FEEDBACK_SOURCE_REVIEWER)
            out = await self._servicer.CreateFeedback(pb.CreateFeedbackRequest(
                feedback=f, idempotency_key=str(data.get("idempotency_key") or "")), None)
            return {"name": out.name, "request_id": out.request_id}

        return await self._call(request, "/api/feedback", handler)
