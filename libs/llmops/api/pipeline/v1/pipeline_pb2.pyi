from google.protobuf import struct_pb2 as _struct_pb2
from llmops.api.common.v1 import chat_pb2 as _chat_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunPipelineRequest(_message.Message):
    __slots__ = ("pipeline", "question", "history", "variables", "instructions", "sampling")
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTIONS_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    pipeline: str
    question: str
    history: _containers.RepeatedCompositeFieldContainer[_chat_pb2.ChatMessage]
    variables: _struct_pb2.Struct
    instructions: str
    sampling: _chat_pb2.SamplingParams
    def __init__(self, pipeline: _Optional[str] = ..., question: _Optional[str] = ..., history: _Optional[_Iterable[_Union[_chat_pb2.ChatMessage, _Mapping]]] = ..., variables: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., instructions: _Optional[str] = ..., sampling: _Optional[_Union[_chat_pb2.SamplingParams, _Mapping]] = ...) -> None: ...

class StreamRunPipelineRequest(_message.Message):
    __slots__ = ("pipeline", "question", "history", "variables", "instructions", "sampling")
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTIONS_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    pipeline: str
    question: str
    history: _containers.RepeatedCompositeFieldContainer[_chat_pb2.ChatMessage]
    variables: _struct_pb2.Struct
    instructions: str
    sampling: _chat_pb2.SamplingParams
    def __init__(self, pipeline: _Optional[str] = ..., question: _Optional[str] = ..., history: _Optional[_Iterable[_Union[_chat_pb2.ChatMessage, _Mapping]]] = ..., variables: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., instructions: _Optional[str] = ..., sampling: _Optional[_Union[_chat_pb2.SamplingParams, _Mapping]] = ...) -> None: ...

class Citation(_message.Message):
    __slots__ = ("document_id", "chunk_id", "score", "marker", "text")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    MARKER_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    chunk_id: str
    score: float
    marker: str
    text: str
    def __init__(self, document_id: _Optional[str] = ..., chunk_id: _Optional[str] = ..., score: _Optional[float] = ..., marker: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class ResolvedVersions(_message.Message):
    __slots__ = ("pipeline", "prompt", "index", "model")
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    pipeline: str
    prompt: str
    index: str
    model: str
    def __init__(self, pipeline: _Optional[str] = ..., prompt: _Optional[str] = ..., index: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("input_tokens", "output_tokens")
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    input_tokens: int
    output_tokens: int
    def __init__(self, input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ...) -> None: ...

class RunPipelineResponse(_message.Message):
    __slots__ = ("answer", "citations", "versions", "usage", "request_id", "trace_id", "finish_reason", "sampling")
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    answer: str
    citations: _containers.RepeatedCompositeFieldContainer[Citation]
    versions: ResolvedVersions
    usage: Usage
    request_id: str
    trace_id: str
    finish_reason: str
    sampling: _chat_pb2.SamplingParams
    def __init__(self, answer: _Optional[str] = ..., citations: _Optional[_Iterable[_Union[Citation, _Mapping]]] = ..., versions: _Optional[_Union[ResolvedVersions, _Mapping]] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., request_id: _Optional[str] = ..., trace_id: _Optional[str] = ..., finish_reason: _Optional[str] = ..., sampling: _Optional[_Union[_chat_pb2.SamplingParams, _Mapping]] = ...) -> None: ...

class StreamRunPipelineResponse(_message.Message):
    __slots__ = ("delta", "citations", "versions", "usage", "request_id", "trace_id", "finish_reason", "sampling")
    DELTA_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    delta: str
    citations: _containers.RepeatedCompositeFieldContainer[Citation]
    versions: ResolvedVersions
    usage: Usage
    request_id: str
    trace_id: str
    finish_reason: str
    sampling: _chat_pb2.SamplingParams
    def __init__(self, delta: _Optional[str] = ..., citations: _Optional[_Iterable[_Union[Citation, _Mapping]]] = ..., versions: _Optional[_Union[ResolvedVersions, _Mapping]] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., request_id: _Optional[str] = ..., trace_id: _Optional[str] = ..., finish_reason: _Optional[str] = ..., sampling: _Optional[_Union[_chat_pb2.SamplingParams, _Mapping]] = ...) -> None: ...
