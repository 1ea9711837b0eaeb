"""Typed wrapper over llmops.prompt.v1.PromptService."""

from __future__ import annotations

import uuid

from google.protobuf import json_format

from llmops.api.prompt.v1 import prompt_pb2 as pb
from llmops.api.prompt.v1 import prompt_pb2_grpc
from llmops.client.base import ServiceClient, operation, struct

ROLES = {"system": pb.ROLE_SYSTEM, "user": pb.ROLE_USER, "assistant": pb.ROLE_ASSISTANT}
TYPES = {"string": pb.VARIABLE_TYPE_STRING, "number": pb.VARIABLE_TYPE_NUMBER, "bool": pb.VARIABLE_TYPE_BOOL,
         "list": pb.VARIABLE_TYPE_LIST}


def variable(name: str, type: str = "string", default=None, description: str = "") -> pb.Variable:
    v = pb.Variable(name=name, type=TYPES[type], description=description)
    if default is not None:
        json_format.ParseDict(default, v.default_value)
    return v


class PromptClient(ServiceClient):
    service = "prompt"

    def __init__(self, channel):
        super().__init__(channel)
        self.stub = prompt_pb2_grpc.PromptServiceStub(channel)

    @operation("create_template")
    def create_template(self, template_id: str, description: str = "") -> pb.PromptTemplate:
        return self._unary(self.stub.CreatePromptTemplate, pb.CreatePromptTemplateRequest(
            template_id=template_id, template=pb.PromptTemplate(description=description)))

    @operation("get_template")
    def get_template(self, name: str) -> pb.PromptTemplate:
        return self._unary(self.stub.GetPromptTemplate, pb.GetPromptTemplateRequest(name=name))

    @operation("list_templates")
    def list_templates(self) -> list[pb.PromptTemplate]:
        return self._paged(self.stub.ListPromptTemplates,
                           lambda token: pb.ListPromptTemplatesRequest(page_size=100, page_token=token), "templates")

    @operation("create_version")
    def create_version(self, template: str, messages: list[tuple[str, str]], *,
                       variables: list[pb.Variable] | None = None, chunk_template: str = "", separator: str = "",
                       context_variable: str = "", index: str = "", top_k: int = 5, filter: dict | None = None,
                       query_variable: str = "", idempotency_key: str | None = None) -> pb.PromptVersion:
        retrieval = pb.RetrievalSpec(index=index, top_k=top_k if index else 0, query_variable=query_variable)
        if filter:
            retrieval.filter.CopyFrom(struct(filter))
        version = pb.PromptVersion(
            messages=[pb.Message(role=ROLES[r], content=c) for r, c in messages], variables=variables or [],
            retrieval=retrieval,
            context=pb.ContextSpec(chunk_template=chunk_template, separator=separator, variable=context_variable))
        return self._unary(self.stub.CreatePromptVersion, pb.CreatePromptVersionRequest(
            parent=template, version=version, idempotency_key=idempotency_key or uuid.uuid4().hex))

    @operation("get_version")
    def get_version(self, ref: str) -> pb.PromptVersion:
        return self._unary(self.stub.GetPromptVersion, pb.GetPromptVersionRequest(name=ref))

    @operation("list_versions")
    def list_versions(self, template: str) -> list[pb.PromptVersion]:
        return self._paged(self.stub.ListPromptVersions, lambda token: pb.ListPromptVersionsRequest(
            parent=template, page_size=100, page_token=token), "versions")

    @operation("set_alias")
    def set_alias(self, template: str, alias: str, version: int) -> pb.PromptTemplate:
        return self._unary(self.stub.SetPromptAlias, pb.SetPromptAliasRequest(template=template, alias=alias,
                                                                             version=version))

    @operation("delete_alias")
    def delete_alias(self, template: str, alias: str) -> pb.PromptTemplate:
        return self._unary(self.stub.DeletePromptAlias, pb.DeletePromptAliasRequest(template=template, alias=alias))

    @operation("approve")
    def approve(self, ref: str, comment: str = "") -> pb.PromptVersion:
        """Approve a version (`name@3`) so protected aliases may point at it (role approver)."""
        return self._unary(self.stub.ApprovePromptVersion, pb.ApprovePromptVersionRequest(name=ref, comment=comment))

    @operation("reject")
    def reject(self, ref: str, comment: str = "") -> pb.PromptVersion:
        return self._unary(self.stub.RejectPromptVersion, pb.RejectPromptVersionRequest(name=ref, comment=comment))

    @operation("events")
    def events(self, template: str = "") -> list[pb.PromptEvent]:
        """The audit log, oldest first."""
        return self._paged(self.stub.ListPromptEvents, lambda token: pb.ListPromptEventsRequest(
            template=template, page_size=500, page_token=token), "events")

    @operation("assemble")
    def assemble(self, template: str, variables: dict | None = None, *, query: str = "", filter: dict | None = None,
                 context_window_tokens: int = 0, reserve_output_tokens: int = 0,
                 tokenizer_model: str = "", route: str = "", index: str = "", top_k: int = 0,
                 history: list[tuple[str, str]] | None = None) -> pb.AssemblePromptResponse:
        """`history`: earlier (role, text) turns, role `user` or `assistant`."""
        request = pb.AssemblePromptRequest(
            template=template, variables=struct(variables), query=query,
            context_window_tokens=context_window_tokens, reserve_output_tokens=reserve_output_tokens,
            tokenizer_model=tokenizer_model, route=route, index=index, top_k=top_k,
            history=[pb.Message(role=pb.Role.Value(f"ROLE_{r.upper()}"), content=c) for r, c in history or ()])
        if filter:
            request.filter.CopyFrom(struct(filter))
        return self._unary(self.stub.AssemblePrompt, request)
