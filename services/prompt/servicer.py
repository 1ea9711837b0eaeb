"""PromptService: templates, versions and aliases, and AssemblePrompt (retrieval through the
retrieval service on the caller's behalf, tokens counted with the target model's tokenizer)."""

from __future__ import annotations

import asyncio
import re

import grpc
from google.protobuf import json_format

from llmops.api.generation.v1 import generation_pb2 as gpb
from llmops.api.prompt.v1 import prompt_pb2 as pb
from llmops.api.prompt.v1 import prompt_pb2_grpc
from llmops.api.retrieval.v1 import retrieval_pb2 as rpb
from llmops.core import auth, channels, names, pagination, telemetry
from llmops.core.auth import Role
from llmops.core.errors import InvalidArgument
from llmops.core.gates import AliasGate, Approval
from llmops.core.model_files import ModelFiles, estimate_tokens
from llmops.core.timeutil import timestamp
from services.prompt import assemble
from services.prompt.config import PromptConfig
from services.prompt.store import EventType, TemplateRecord, TemplateStore, VersionRecord

SERVICE = pb.DESCRIPTOR.services_by_name["PromptService"].full_name
POLICY = auth.Policy.for_service(SERVICE, {
    "CreatePromptTemplate": Role.EDITOR, "GetPromptTemplate": Role.READER, "ListPromptTemplates": Role.READER,
    "CreatePromptVersion": Role.EDITOR, "GetPromptVersion": Role.READER, "ListPromptVersions": Role.READER,
    "SetPromptAlias": Role.EDITOR,  # approver for protected aliases (the gate, checked in the handler)
    "DeletePromptAlias": Role.EDITOR,
    "ApprovePromptVersion": Role.APPROVER, "RejectPromptVersion": Role.APPROVER, "ListPromptEvents": Role.READER,
    "AssemblePrompt": Role.READER,
})
COMPILED_CACHE = 1024
MAX_HISTORY = 64
VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def template_id(name: str) -> str:
    return names.resource_id("prompt template", "prompts", name)


def version_ref(ref: str) -> names.VersionRef:
    return names.parse_version_ref("prompt template", "prompts", ref)


def template_to_pb(t: TemplateRecord) -> pb.PromptTemplate:
    return pb.PromptTemplate(name=f"prompts/{t.name}", description=t.description, aliases=t.aliases,
                             latest_version=t.latest_version, create_time=timestamp(t.create_time_us))


APPROVAL_TO_PB = {Approval.PENDING_APPROVAL: pb.APPROVAL_STATE_PENDING_APPROVAL, Approval.APPROVED:
                  pb.APPROVAL_STATE_APPROVED, Approval.REJECTED: pb.APPROVAL_STATE_REJECTED}
EVENT_TO_PB = {EventType.VERSION_CREATED: pb.PROMPT_EVENT_TYPE_VERSION_CREATED,
               EventType.VERSION_APPROVED: pb.PROMPT_EVENT_TYPE_VERSION_APPROVED,
               EventType.VERSION_REJECTED: pb.PROMPT_EVENT_TYPE_VERSION_REJECTED,
               EventType.ALIAS_SET: pb.PROMPT_EVENT_TYPE_ALIAS_SET,
               EventType.ALIAS_DELETED: pb.PROMPT_EVENT_TYPE_ALIAS_DELETED}
MAX_COMMENT = 2000


def version_to_pb(v: VersionRecord) -> pb.PromptVersion:
    out = pb.PromptVersion(name=f"prompts/{v.template}/versions/{v.version}", version=v.version,
                           aliases=list(v.aliases), created_by=v.created_by, create_time=timestamp(v.create_time_us),
                           approval=APPROVAL_TO_PB[Approval(v.approval)], reviewer=v.reviewer,
                           review_comment=v.review_comment)
    if v.review_time_us:
        out.review_time.CopyFrom(timestamp(v.review_time_us))
    json_format.ParseDict(v.body, out, ignore_unknown_fields=True)
    return out


class PromptServicer(prompt_pb2_grpc.PromptServiceServicer):
    def __init__(self, store: TemplateStore, retrieval_stub, tokenizers: ModelFiles, config: PromptConfig,
                 generation_stub=None, *, renderer: assemble.Renderer):
        self._store = store
        self._db = store.db
        self._retrieval = retrieval_stub
        self._generation = generation_stub
        self._tokenizers = tokenizers
        self._renderer = renderer
        self._gate = AliasGate(frozenset(config.protected_aliases), "`llmops prompts approve {ref}`")
        self._config = config
        self._compiled_versions: dict[tuple[str, int], assemble.CompiledVersion] = {}

    async def CreatePromptTemplate(self, request, context) -> pb.PromptTemplate:
        name = names.check_id("prompt template", request.template_id)
        return template_to_pb(await self._db.run(self._store.create, name, request.template.description[:10_000]))

    async def GetPromptTemplate(self, request, context) -> pb.PromptTemplate:
        return template_to_pb(await self._db.run_read(self._store.get, template_id(request.name)))

    async def ListPromptTemplates(self, request, context) -> pb.ListPromptTemplatesResponse:
        page = pagination.start(request, {"list": "templates"}, str)
        rows, token = page.finish(await self._db.run_read(self._store.list, page.position, page.limit),
                                  lambda t: t.name)
        return pb.ListPromptTemplatesResponse(templates=[template_to_pb(t) for t in rows], next_page_token=token)

    def _check_body(self, given: pb.PromptVersion) -> dict:
        """The version's body (messages, variables, context, retrieval) checked; the rest of
        `given` is the service's and ignored."""
        body = json_format.MessageToDict(
            pb.PromptVersion(messages=given.messages, variables=given.variables, context=given.context,
                             retrieval=given.retrieval), preserving_proto_field_name=True)
        seen = set()
        for v in given.variables:
            if not VARIABLE.match(v.name) or v.name in seen:
                raise InvalidArgument(f"variable name {v.name!r} must be a unique identifier")
            seen.add(v.name)
        version = assemble.compile_version(body)  # syntax errors name the message and line
        if version.context_variable in seen:
            raise InvalidArgument(f"variable {version.context_variable!r} is filled with the retrieved context; "
                                  "do not declare it")
        r = given.retrieval
        if r.index:
            names.check_id("index", r.index.removeprefix("indexes/"))
            if not 1 <= (r.top_k or 5) <= self._config.max_top_k:
                raise InvalidArgument(f"retrieval.top_k must be 1-{self._config.max_top_k}")
            if r.HasField("filter"):
                json_format.ParseDict(json_format.MessageToDict(r.filter), rpb.Filter())
            query_var = r.query_variable or "question"
            if query_var not in seen:
                raise InvalidArgument(f"retrieval.query_variable {query_var!r} is not a declared variable")
        return body

    async def CreatePromptVersion(self, request, context) -> pb.PromptVersion:
        name = template_id(request.parent)
        if request.idempotency_key and not names.REQUEST_ID.match(request.idempotency_key):
            raise InvalidArgument("idempotency_key must be 1-128 characters of letters, digits, '.', '_', ':' or '-'",
                                  field="idempotency_key")
        try:
            body = self._check_body(request.version)
        except json_format.ParseError as exc:
            raise InvalidArgument(f"retrieval.filter is not a valid filter: {exc}") from None
        record = await self._db.run(self._store.add_version, name, body, auth.caller().name, request.idempotency_key or None)
        telemetry.annotate(template=name, version=record.version)
        return version_to_pb(record)

    async def GetPromptVersion(self, request, context) -> pb.PromptVersion:
        return version_to_pb(await self._db.run_read(self._store.get_version, version_ref(request.name)))

    async def ListPromptVersions(self, request, context) -> pb.ListPromptVersionsResponse:
        name = template_id(request.parent)
        page = pagination.start(request, {"template": name}, int)
        rows, token = page.finish(await self._db.run_read(self._store.list_versions, name, page.position, page.limit),
                                  lambda v: v.version)
        return pb.ListPromptVersionsResponse(versions=[version_to_pb(v) for v in rows], next_page_token=token)

    async def SetPromptAlias(self, request, context) -> pb.PromptTemplate:
        name = template_id(request.template)
        alias = names.check_alias(request.alias)
        if request.version < 1:
            raise InvalidArgument(f"version must be a version number (>= 1), got {request.version}")
        self._gate.require_mover(alias)
        telemetry.annotate(template=name, alias=alias, version=request.version)
        return template_to_pb(await self._db.run(self._store.set_alias, auth.caller().name, name, alias,
                                                 request.version, self._gate))

    async def DeletePromptAlias(self, request, context) -> pb.PromptTemplate:
        name = template_id(request.template)
        alias = names.check_alias(request.alias)
        self._gate.require_mover(alias, "deleting")
        telemetry.annotate(template=name, alias=alias)
        return template_to_pb(await self._db.run(self._store.delete_alias, auth.caller().name, name, alias))

    async def _review(self, ref_text: str, comment: str, approve: bool) -> pb.PromptVersion:
        ref = version_ref(ref_text)
        if len(comment) > MAX_COMMENT:
            raise InvalidArgument(f"comment is limited to {MAX_COMMENT} characters")
        telemetry.annotate(template=ref.id, reference=str(ref), approve=approve)
        return version_to_pb(await self._db.run(self._store.review_version, auth.caller().name, ref, approve,
                                                comment, self._gate))

    async def ApprovePromptVersion(self, request, context) -> pb.PromptVersion:
        return await self._review(request.name, request.comment, True)

    async def RejectPromptVersion(self, request, context) -> pb.PromptVersion:
        return await self._review(request.name, request.comment, False)

    async def ListPromptEvents(self, request, context) -> pb.ListPromptEventsResponse:
        name = template_id(request.template) if request.template else None
        page = pagination.start(request, {"template": name}, int)
        rows, token = page.finish(await self._db.run_read(self._store.list_events, name, page.position or 0,
                                                          page.limit), lambda e: e.sequence)
        return pb.ListPromptEventsResponse(events=[pb.PromptEvent(
            sequence=e.sequence, type=EVENT_TO_PB.get(e.type, 0), template=f"prompts/{e.template}", version=e.version,
            alias=e.alias, previous_version=e.previous_version, actor=e.actor, comment=e.comment,
            event_time=timestamp(e.time_us)) for e in rows], next_page_token=token)

    def _compiled(self, record: VersionRecord) -> assemble.CompiledVersion:
        """Versions never change, so each is compiled once (Jinja compilation costs milliseconds)."""
        key = (record.template, record.version)
        compiled = self._compiled_versions.get(key)
        if compiled is None:
            if len(self._compiled_versions) >= COMPILED_CACHE:
                self._compiled_versions.pop(next(iter(self._compiled_versions)))
            compiled = self._compiled_versions[key] = assemble.compile_version(record.body)
        return compiled

    async def _counters(self, request: pb.AssemblePromptRequest):
        """(count text, count whole messages or None, the route model's context window or 0)."""
        if request.route and request.tokenizer_model:
            raise InvalidArgument("give route or tokenizer_model, not both")
        model, window = request.tokenizer_model, 0
        if request.route:  # the route says which tokenizer its model uses and its window
            try:
                info = await self._generation.CountTokens(gpb.CountTokensRequest(route=request.route),
                                                          timeout=self._config.downstream_timeout_s)
            except grpc.aio.AioRpcError as exc:
                raise channels.downstream_error(exc, "generation") from None
            model, window = info.tokenizer_model, info.context_window
            if not model:  # a provider target: its tokenizer is not ours to load
                return estimate_tokens, None, window
        if not model:
            return None, None, 0
        try:
            version = await self._tokenizers.resolve(model)
            count = await self._tokenizers.count_function(version)
            chat = await self._tokenizers.chat_counter(version)
        except grpc.aio.AioRpcError as exc:
            raise channels.downstream_error(exc, "registry") from None
        count_messages = (lambda messages: chat([{"role": r, "content": c} for r, c in messages])) if chat else None
        return count, count_messages, window

    @staticmethod
    def _history(request: pb.AssemblePromptRequest) -> list[tuple[str, str]]:
        if len(request.history) > MAX_HISTORY:
            raise InvalidArgument(f"history has {len(request.history)} turns; send at most {MAX_HISTORY}")
        out = []
        for i, m in enumerate(request.history):
            if m.role not in (pb.ROLE_USER, pb.ROLE_ASSISTANT):
                raise InvalidArgument(f"history[{i}].role must be user or assistant (the template owns the system "
                                      "message)")
            out.append((assemble.ROLE_NAMES[pb.Role.Name(m.role)], m.content))
        return out

    async def AssemblePrompt(self, request: pb.AssemblePromptRequest, context) -> pb.AssemblePromptResponse:
        ref = version_ref(request.template)
        record = await self._db.run_read(self._store.get_version, ref)
        body = record.body
        version = self._compiled(record)
        given = json_format.MessageToDict(request.variables)
        instructions = request.instructions
        if instructions and any(d["name"] == assemble.INSTRUCTIONS_VARIABLE for d in body.get("variables", [])):
            given[assemble.INSTRUCTIONS_VARIABLE], instructions = instructions, ""  # where the template puts them
        variables = assemble.bind_variables(body.get("variables", []), given, version.context_variable)
        history = self._history(request)
        count, count_messages, route_window = await self._counters(request)
        window = request.context_window_tokens or route_window
        budget = None
        if window:
            if count is None:
                raise InvalidArgument("a context_window_tokens budget needs tokenizer_model or route to count tokens with")
            if request.reserve_output_tokens < 0 or request.reserve_output_tokens >= window:
                raise InvalidArgument(f"reserve_output_tokens must be >= 0 and below the context window ({window})")
            budget = window - request.reserve_output_tokens
        spec = dict(body.get("retrieval") or {})
        if request.index:
            spec["index"] = names.check_id("index", request.index.removeprefix("indexes/"))
        if request.top_k:
            if not 1 <= request.top_k <= self._config.max_top_k:
                raise InvalidArgument(f"top_k must be 1-{self._config.max_top_k}")
            spec["top_k"] = request.top_k
        chunks, index_version = await self._retrieve(spec, request, variables)
        result = await asyncio.to_thread(assemble.assemble, self._renderer, version, variables, chunks, count, budget,
                                         history=history, count_messages=count_messages, instructions=instructions)
        telemetry.annotate(template=ref.id, version=record.version, reference=str(ref),
                           prompt_tokens=result.prompt_tokens, truncated=result.truncated,
                           chunk_ids=[c.chunk_id for c, _, _ in result.included])
        out = pb.AssemblePromptResponse(
            rendered_text=result.text, index_version=index_version, prompt_tokens=result.prompt_tokens,
            truncated=result.truncated, template_version=f"prompts/{ref.id}/versions/{record.version}",
            index=spec.get("index", ""), history_turns=result.history_turns, context_window_tokens=window)
        role_pb = {v: k for k, v in assemble.ROLE_NAMES.items()}
        for role, text in result.messages:
            out.messages.add(role=pb.Role.Value(role_pb[role]), content=text)
        for chunk, citation, tokens in result.included:
            out.chunks.add(document_id=chunk.document_id, chunk_id=chunk.chunk_id, score=chunk.score,
                           citation=citation, tokens=tokens, text=chunk.text)
        return out

    async def _retrieve(self, spec: dict, request: pb.AssemblePromptRequest, variables: dict):
        if not spec.get("index"):
            return [], 0
        query = request.query or variables.get(spec.get("query_variable") or "question", "")
        if not isinstance(query, str) or not query.strip():
            raise InvalidArgument("the retrieval query is empty; pass the question variable or `query`")
        search = rpb.SearchRequest(index=spec["index"], text=query, top_k=int(spec.get("top_k") or 5))
        filter_json = json_format.MessageToDict(request.filter) if request.HasField("filter") else spec.get("filter")
        if filter_json:
            try:
                json_format.ParseDict(filter_json, search.filter)
            except json_format.ParseError as exc:
                raise InvalidArgument(f"filter is not a valid retrieval filter: {exc}") from None
        try:
            resp = await self._retrieval.Search(search, timeout=self._config.downstream_timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise channels.downstream_error(exc, "retrieval") from None
        chunks = [assemble.Chunk(h.document_id, h.chunk_id, h.text, h.score) for h in resp.hits]
        return chunks, resp.index_version
