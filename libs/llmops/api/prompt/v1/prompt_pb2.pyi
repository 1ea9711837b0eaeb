import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_SYSTEM: _ClassVar[Role]
    ROLE_USER: _ClassVar[Role]
    ROLE_ASSISTANT: _ClassVar[Role]

class VariableType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VARIABLE_TYPE_UNSPECIFIED: _ClassVar[VariableType]
    VARIABLE_TYPE_STRING: _ClassVar[VariableType]
    VARIABLE_TYPE_NUMBER: _ClassVar[VariableType]
    VARIABLE_TYPE_BOOL: _ClassVar[VariableType]
    VARIABLE_TYPE_LIST: _ClassVar[VariableType]

class ApprovalState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    APPROVAL_STATE_UNSPECIFIED: _ClassVar[ApprovalState]
    APPROVAL_STATE_PENDING_APPROVAL: _ClassVar[ApprovalState]
    APPROVAL_STATE_APPROVED: _ClassVar[ApprovalState]
    APPROVAL_STATE_REJECTED: _ClassVar[ApprovalState]

class PromptEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROMPT_EVENT_TYPE_UNSPECIFIED: _ClassVar[PromptEventType]
    PROMPT_EVENT_TYPE_VERSION_CREATED: _ClassVar[PromptEventType]
    PROMPT_EVENT_TYPE_VERSION_APPROVED: _ClassVar[PromptEventType]
    PROMPT_EVENT_TYPE_VERSION_REJECTED: _ClassVar[PromptEventType]
    PROMPT_EVENT_TYPE_ALIAS_SET: _ClassVar[PromptEventType]
    PROMPT_EVENT_TYPE_ALIAS_DELETED: _ClassVar[PromptEventType]
ROLE_UNSPECIFIED: Role
ROLE_SYSTEM: Role
ROLE_USER: Role
ROLE_ASSISTANT: Role
VARIABLE_TYPE_UNSPECIFIED: VariableType
VARIABLE_TYPE_STRING: VariableType
VARIABLE_TYPE_NUMBER: VariableType
VARIABLE_TYPE_BOOL: VariableType
VARIABLE_TYPE_LIST: VariableType
APPROVAL_STATE_UNSPECIFIED: ApprovalState
APPROVAL_STATE_PENDING_APPROVAL: ApprovalState
APPROVAL_STATE_APPROVED: ApprovalState
APPROVAL_STATE_REJECTED: ApprovalState
PROMPT_EVENT_TYPE_UNSPECIFIED: PromptEventType
PROMPT_EVENT_TYPE_VERSION_CREATED: PromptEventType
PROMPT_EVENT_TYPE_VERSION_APPROVED: PromptEventType
PROMPT_EVENT_TYPE_VERSION_REJECTED: PromptEventType
PROMPT_EVENT_TYPE_ALIAS_SET: PromptEventType
PROMPT_EVENT_TYPE_ALIAS_DELETED: PromptEventType

class Message(_message.Message):
    __slots__ = ("role", "content")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    role: Role
    content: str
    def __init__(self, role: _Optional[_Union[Role, str]] = ..., content: _Optional[str] = ...) -> None: ...

class Variable(_message.Message):
    __slots__ = ("name", "type", "default_value", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VALUE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: VariableType
    default_value: _struct_pb2.Value
    description: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[_Union[VariableType, str]] = ..., default_value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., description: _Optional[str] = ...) -> None: ...

class ContextSpec(_message.Message):
    __slots__ = ("chunk_template", "separator", "variable")
    CHUNK_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    SEPARATOR_FIELD_NUMBER: _ClassVar[int]
    VARIABLE_FIELD_NUMBER: _ClassVar[int]
    chunk_template: str
    separator: str
    variable: str
    def __init__(self, chunk_template: _Optional[str] = ..., separator: _Optional[str] = ..., variable: _Optional[str] = ...) -> None: ...

class RetrievalSpec(_message.Message):
    __slots__ = ("index", "top_k", "filter", "query_variable")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    QUERY_VARIABLE_FIELD_NUMBER: _ClassVar[int]
    index: str
    top_k: int
    filter: _struct_pb2.Struct
    query_variable: str
    def __init__(self, index: _Optional[str] = ..., top_k: _Optional[int] = ..., filter: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., query_variable: _Optional[str] = ...) -> None: ...

class PromptTemplate(_message.Message):
    __slots__ = ("name", "description", "aliases", "latest_version", "create_time")
    class AliasesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    LATEST_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    aliases: _containers.ScalarMap[str, int]
    latest_version: int
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., aliases: _Optional[_Mapping[str, int]] = ..., latest_version: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PromptVersion(_message.Message):
    __slots__ = ("name", "version", "messages", "variables", "context", "retrieval", "aliases", "created_by", "create_time", "approval", "reviewer", "review_comment", "review_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    RETRIEVAL_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_FIELD_NUMBER: _ClassVar[int]
    REVIEW_COMMENT_FIELD_NUMBER: _ClassVar[int]
    REVIEW_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    messages: _containers.RepeatedCompositeFieldContainer[Message]
    variables: _containers.RepeatedCompositeFieldContainer[Variable]
    context: ContextSpec
    retrieval: RetrievalSpec
    aliases: _containers.RepeatedScalarFieldContainer[str]
    created_by: str
    create_time: _timestamp_pb2.Timestamp
    approval: ApprovalState
    reviewer: str
    review_comment: str
    review_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., messages: _Optional[_Iterable[_Union[Message, _Mapping]]] = ..., variables: _Optional[_Iterable[_Union[Variable, _Mapping]]] = ..., context: _Optional[_Union[ContextSpec, _Mapping]] = ..., retrieval: _Optional[_Union[RetrievalSpec, _Mapping]] = ..., aliases: _Optional[_Iterable[str]] = ..., created_by: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., approval: _Optional[_Union[ApprovalState, str]] = ..., reviewer: _Optional[str] = ..., review_comment: _Optional[str] = ..., review_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ApprovePromptVersionRequest(_message.Message):
    __slots__ = ("name", "comment")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    comment: str
    def __init__(self, name: _Optional[str] = ..., comment: _Optional[str] = ...) -> None: ...

class RejectPromptVersionRequest(_message.Message):
    __slots__ = ("name", "comment")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    comment: str
    def __init__(self, name: _Optional[str] = ..., comment: _Optional[str] = ...) -> None: ...

class PromptEvent(_message.Message):
    __slots__ = ("sequence", "type", "template", "version", "alias", "previous_version", "actor", "event_time", "comment")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    type: PromptEventType
    template: str
    version: int
    alias: str
    previous_version: int
    actor: str
    event_time: _timestamp_pb2.Timestamp
    comment: str
    def __init__(self, sequence: _Optional[int] = ..., type: _Optional[_Union[PromptEventType, str]] = ..., template: _Optional[str] = ..., version: _Optional[int] = ..., alias: _Optional[str] = ..., previous_version: _Optional[int] = ..., actor: _Optional[str] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., comment: _Optional[str] = ...) -> None: ...

class ListPromptEventsRequest(_message.Message):
    __slots__ = ("template", "page_size", "page_token")
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    template: str
    page_size: int
    page_token: str
    def __init__(self, template: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPromptEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[PromptEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[PromptEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreatePromptTemplateRequest(_message.Message):
    __slots__ = ("template_id", "template")
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    template_id: str
    template: PromptTemplate
    def __init__(self, template_id: _Optional[str] = ..., template: _Optional[_Union[PromptTemplate, _Mapping]] = ...) -> None: ...

class GetPromptTemplateRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListPromptTemplatesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPromptTemplatesResponse(_message.Message):
    __slots__ = ("templates", "next_page_token")
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    templates: _containers.RepeatedCompositeFieldContainer[PromptTemplate]
    next_page_token: str
    def __init__(self, templates: _Optional[_Iterable[_Union[PromptTemplate, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreatePromptVersionRequest(_message.Message):
    __slots__ = ("parent", "version", "idempotency_key")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    parent: str
    version: PromptVersion
    idempotency_key: str
    def __init__(self, parent: _Optional[str] = ..., version: _Optional[_Union[PromptVersion, _Mapping]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class GetPromptVersionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListPromptVersionsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPromptVersionsResponse(_message.Message):
    __slots__ = ("versions", "next_page_token")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[PromptVersion]
    next_page_token: str
    def __init__(self, versions: _Optional[_Iterable[_Union[PromptVersion, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SetPromptAliasRequest(_message.Message):
    __slots__ = ("template", "alias", "version")
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    template: str
    alias: str
    version: int
    def __init__(self, template: _Optional[str] = ..., alias: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class DeletePromptAliasRequest(_message.Message):
    __slots__ = ("template", "alias")
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    template: str
    alias: str
    def __init__(self, template: _Optional[str] = ..., alias: _Optional[str] = ...) -> None: ...

class AssemblePromptRequest(_message.Message):
    __slots__ = ("template", "variables", "query", "filter", "context_window_tokens", "reserve_output_tokens", "route", "tokenizer_model", "index", "top_k", "history", "instructions")
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_WINDOW_TOKENS_FIELD_NUMBER: _ClassVar[int]
    RESERVE_OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    TOKENIZER_MODEL_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTIONS_FIELD_NUMBER: _ClassVar[int]
    template: str
    variables: _struct_pb2.Struct
    query: str
    filter: _struct_pb2.Struct
    context_window_tokens: int
    reserve_output_tokens: int
    route: str
    tokenizer_model: str
    index: str
    top_k: int
    history: _containers.RepeatedCompositeFieldContainer[Message]
    instructions: str
    def __init__(self, template: _Optional[str] = ..., variables: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., query: _Optional[str] = ..., filter: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., context_window_tokens: _Optional[int] = ..., reserve_output_tokens: _Optional[int] = ..., route: _Optional[str] = ..., tokenizer_model: _Optional[str] = ..., index: _Optional[str] = ..., top_k: _Optional[int] = ..., history: _Optional[_Iterable[_Union[Message, _Mapping]]] = ..., instructions: _Optional[str] = ...) -> None: ...

class IncludedChunk(_message.Message):
    __slots__ = ("document_id", "chunk_id", "score", "citation", "tokens", "text")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    CITATION_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    chunk_id: str
    score: float
    citation: str
    tokens: int
    text: str
    def __init__(self, document_id: _Optional[str] = ..., chunk_id: _Optional[str] = ..., score: _Optional[float] = ..., citation: _Optional[str] = ..., tokens: _Optional[int] = ..., text: _Optional[str] = ...) -> None: ...

class AssemblePromptResponse(_message.Message):
    __slots__ = ("messages", "rendered_text", "chunks", "index_version", "prompt_tokens", "truncated", "template_version", "index", "history_turns", "context_window_tokens")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    RENDERED_TEXT_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    INDEX_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    HISTORY_TURNS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_WINDOW_TOKENS_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[Message]
    rendered_text: str
    chunks: _containers.RepeatedCompositeFieldContainer[IncludedChunk]
    index_version: int
    prompt_tokens: int
    truncated: bool
    template_version: str
    index: str
    history_turns: int
    context_window_tokens: int
    def __init__(self, messages: _Optional[_Iterable[_Union[Message, _Mapping]]] = ..., rendered_text: _Optional[str] = ..., chunks: _Optional[_Iterable[_Union[IncludedChunk, _Mapping]]] = ..., index_version: _Optional[int] = ..., prompt_tokens: _Optional[int] = ..., truncated: _Optional[bool] = ..., template_version: _Optional[str] = ..., index: _Optional[str] = ..., history_turns: _Optional[int] = ..., context_window_tokens: _Optional[int] = ...) -> None: ...
