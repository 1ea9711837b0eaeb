"""PipelineService: RunPipeline and StreamRunPipeline over gRPC, on the caller's behalf (their
key reaches registry, prompt and generation, so their roles and limits apply there too)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from google.protobuf import json_format

from llmops.api.pipeline.v1 import pipeline_pb2 as pb
from llmops.api.pipeline.v1 import pipeline_pb2_grpc
from llmops.core import auth, telemetry
from llmops.core.auth import Role
from services.pipeline.runner import Deadline, Piece, PipelineRunner, Question, new_request_id

SERVICE = pb.DESCRIPTOR.services_by_name["PipelineService"].full_name
POLICY = auth.Policy.for_service(SERVICE, {"RunPipeline": Role.READER, "StreamRunPipeline": Role.READER})


def question(request: pb.RunPipelineRequest | pb.StreamRunPipelineRequest) -> Question:
    return Question(request.pipeline, request.question, [(t.role, t.content) for t in request.history],
                    json_format.MessageToDict(request.variables), request.instructions,
                    request.sampling if request.HasField("sampling") else None, prefix="sampling.")


def fill(out: pb.RunPipelineResponse | pb.StreamRunPipelineResponse, piece: Piece) -> None:
    if piece.citations is not None:
        for c in piece.citations:
            out.citations.add(document_id=c.document_id, chunk_id=c.chunk_id, score=c.score, marker=c.marker,
                              text=c.text)
    if piece.versions is not None:
        v = piece.versions
        out.versions.CopyFrom(pb.ResolvedVersions(pipeline=v.pipeline, prompt=v.prompt, index=v.index, model=v.model))
    if piece.sampling is not None:
        out.sampling.CopyFrom(piece.sampling)
    if piece.last:
        out.usage.CopyFrom(pb.Usage(input_tokens=piece.input_tokens, output_tokens=piece.output_tokens))
        out.finish_reason = piece.finish_reason


class PipelineServicer(pipeline_pb2_grpc.PipelineServiceServicer):
    def __init__(self, runner: PipelineRunner):
        self._runner = runner

    @staticmethod
    def _start() -> tuple[str, str]:
        request_id = new_request_id()
        telemetry.annotate(request_id=request_id)
        return request_id, telemetry.current_trace_id()

    async def RunPipeline(self, request, context) -> pb.RunPipelineResponse:
        request_id, trace_id = self._start()
        out = pb.RunPipelineResponse(request_id=request_id, trace_id=trace_id)
        parts = []
        async for piece in self._runner.answer(question(request), Deadline(context.time_remaining()), request_id):
            parts.append(piece.delta)
            fill(out, piece)
        out.answer = "".join(parts)
        return out

    async def StreamRunPipeline(self, request, context) -> AsyncIterator[pb.StreamRunPipelineResponse]:
        request_id, trace_id = self._start()
        async for piece in self._runner.answer(question(request), Deadline(context.time_remaining()), request_id):
            out = pb.StreamRunPipelineResponse(delta=piece.delta, request_id=request_id, trace_id=trace_id)
            fill(out, piece)
            yield out
