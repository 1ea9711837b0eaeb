import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from llmops.api.common.v1 import chat_pb2 as _chat_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FeedbackSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FEEDBACK_SOURCE_UNSPECIFIED: _ClassVar[FeedbackSource]
    FEEDBACK_SOURCE_END_USER: _ClassVar[FeedbackSource]
    FEEDBACK_SOURCE_REVIEWER: _ClassVar[FeedbackSource]
    FEEDBACK_SOURCE_AUTOMATED_JUDGE: _ClassVar[FeedbackSource]

class Thumb(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    THUMB_UNSPECIFIED: _ClassVar[Thumb]
    THUMB_UP: _ClassVar[Thumb]
    THUMB_DOWN: _ClassVar[Thumb]

class DatasetFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATASET_FORMAT_UNSPECIFIED: _ClassVar[DatasetFormat]
    DATASET_FORMAT_CHAT: _ClassVar[DatasetFormat]
    DATASET_FORMAT_EVALUATION: _ClassVar[DatasetFormat]
FEEDBACK_SOURCE_UNSPECIFIED: FeedbackSource
FEEDBACK_SOURCE_END_USER: FeedbackSource
FEEDBACK_SOURCE_REVIEWER: FeedbackSource
FEEDBACK_SOURCE_AUTOMATED_JUDGE: FeedbackSource
THUMB_UNSPECIFIED: Thumb
THUMB_UP: Thumb
THUMB_DOWN: Thumb
DATASET_FORMAT_UNSPECIFIED: DatasetFormat
DATASET_FORMAT_CHAT: DatasetFormat
DATASET_FORMAT_EVALUATION: DatasetFormat

class Source(_message.Message):
    __slots__ = ("document_id", "chunk_id", "score", "text")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    chunk_id: str
    score: float
    text: str
    def __init__(self, document_id: _Optional[str] = ..., chunk_id: _Optional[str] = ..., score: _Optional[float] = ..., text: _Optional[str] = ...) -> None: ...

class InferenceRecord(_message.Message):
    __slots__ = ("request_id", "trace_id", "pipeline_version", "prompt_version", "index_version", "model_version", "question", "chunk_ids", "answer", "latency_ms", "input_tokens", "output_tokens", "caller", "create_time", "sources", "pipeline", "feedback_count", "prompt_messages", "error")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROMPT_VERSION_FIELD_NUMBER: _ClassVar[int]
    INDEX_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    CHUNK_IDS_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_COUNT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    trace_id: str
    pipeline_version: str
    prompt_version: str
    index_version: str
    model_version: str
    question: str
    chunk_ids: _containers.RepeatedScalarFieldContainer[str]
    answer: str
    latency_ms: float
    input_tokens: int
    output_tokens: int
    caller: str
    create_time: _timestamp_pb2.Timestamp
    sources: _containers.RepeatedCompositeFieldContainer[Source]
    pipeline: str
    feedback_count: int
    prompt_messages: _containers.RepeatedCompositeFieldContainer[_chat_pb2.ChatMessage]
    error: str
    def __init__(self, request_id: _Optional[str] = ..., trace_id: _Optional[str] = ..., pipeline_version: _Optional[str] = ..., prompt_version: _Optional[str] = ..., index_version: _Optional[str] = ..., model_version: _Optional[str] = ..., question: _Optional[str] = ..., chunk_ids: _Optional[_Iterable[str]] = ..., answer: _Optional[str] = ..., latency_ms: _Optional[float] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., caller: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sources: _Optional[_Iterable[_Union[Source, _Mapping]]] = ..., pipeline: _Optional[str] = ..., feedback_count: _Optional[int] = ..., prompt_messages: _Optional[_Iterable[_Union[_chat_pb2.ChatMessage, _Mapping]]] = ..., error: _Optional[str] = ...) -> None: ...

class LogInferenceRequest(_message.Message):
    __slots__ = ("record",)
    RECORD_FIELD_NUMBER: _ClassVar[int]
    record: InferenceRecord
    def __init__(self, record: _Optional[_Union[InferenceRecord, _Mapping]] = ...) -> None: ...

class LogInferenceResponse(_message.Message):
    __slots__ = ("record", "duplicate")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    record: InferenceRecord
    duplicate: bool
    def __init__(self, record: _Optional[_Union[InferenceRecord, _Mapping]] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class LogInferencesRequest(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[InferenceRecord]
    def __init__(self, records: _Optional[_Iterable[_Union[InferenceRecord, _Mapping]]] = ...) -> None: ...

class LogInferencesResponse(_message.Message):
    __slots__ = ("stored", "duplicates")
    STORED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    stored: int
    duplicates: int
    def __init__(self, stored: _Optional[int] = ..., duplicates: _Optional[int] = ...) -> None: ...

class Feedback(_message.Message):
    __slots__ = ("name", "request_id", "trace_id", "thumb", "rating", "corrected_answer", "comment", "labels", "reviewer", "source", "quarantined", "create_time", "created_by", "pipeline_version", "model_version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    THUMB_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    CORRECTED_ANSWER_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    QUARANTINED_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    request_id: str
    trace_id: str
    thumb: Thumb
    rating: int
    corrected_answer: str
    comment: str
    labels: _containers.RepeatedScalarFieldContainer[str]
    reviewer: str
    source: FeedbackSource
    quarantined: bool
    create_time: _timestamp_pb2.Timestamp
    created_by: str
    pipeline_version: str
    model_version: str
    def __init__(self, name: _Optional[str] = ..., request_id: _Optional[str] = ..., trace_id: _Optional[str] = ..., thumb: _Optional[_Union[Thumb, str]] = ..., rating: _Optional[int] = ..., corrected_answer: _Optional[str] = ..., comment: _Optional[str] = ..., labels: _Optional[_Iterable[str]] = ..., reviewer: _Optional[str] = ..., source: _Optional[_Union[FeedbackSource, str]] = ..., quarantined: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ..., pipeline_version: _Optional[str] = ..., model_version: _Optional[str] = ...) -> None: ...

class CreateFeedbackRequest(_message.Message):
    __slots__ = ("feedback", "idempotency_key")
    FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    feedback: Feedback
    idempotency_key: str
    def __init__(self, feedback: _Optional[_Union[Feedback, _Mapping]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class ListFeedbackRequest(_message.Message):
    __slots__ = ("pipeline", "model_version", "source", "label", "start_time", "end_time", "page_size", "page_token")
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    pipeline: str
    model_version: str
    source: FeedbackSource
    label: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    def __init__(self, pipeline: _Optional[str] = ..., model_version: _Optional[str] = ..., source: _Optional[_Union[FeedbackSource, str]] = ..., label: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListFeedbackResponse(_message.Message):
    __slots__ = ("feedback", "next_page_token")
    FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    feedback: _containers.RepeatedCompositeFieldContainer[Feedback]
    next_page_token: str
    def __init__(self, feedback: _Optional[_Iterable[_Union[Feedback, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetFeedbackSummaryRequest(_message.Message):
    __slots__ = ("pipeline", "start_time", "end_time")
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    pipeline: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, pipeline: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class FeedbackSummary(_message.Message):
    __slots__ = ("pipeline_version", "model_version", "requests", "feedback_count", "approval_rate", "mean_rating", "corrections", "latency_p50_ms", "latency_p95_ms", "total_tokens", "errors", "error_rate", "thumbs_down", "thumbs_down_rate")
    PIPELINE_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_COUNT_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_RATE_FIELD_NUMBER: _ClassVar[int]
    MEAN_RATING_FIELD_NUMBER: _ClassVar[int]
    CORRECTIONS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P50_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P95_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    THUMBS_DOWN_FIELD_NUMBER: _ClassVar[int]
    THUMBS_DOWN_RATE_FIELD_NUMBER: _ClassVar[int]
    pipeline_version: str
    model_version: str
    requests: int
    feedback_count: int
    approval_rate: float
    mean_rating: float
    corrections: int
    latency_p50_ms: float
    latency_p95_ms: float
    total_tokens: int
    errors: int
    error_rate: float
    thumbs_down: int
    thumbs_down_rate: float
    def __init__(self, pipeline_version: _Optional[str] = ..., model_version: _Optional[str] = ..., requests: _Optional[int] = ..., feedback_count: _Optional[int] = ..., approval_rate: _Optional[float] = ..., mean_rating: _Optional[float] = ..., corrections: _Optional[int] = ..., latency_p50_ms: _Optional[float] = ..., latency_p95_ms: _Optional[float] = ..., total_tokens: _Optional[int] = ..., errors: _Optional[int] = ..., error_rate: _Optional[float] = ..., thumbs_down: _Optional[int] = ..., thumbs_down_rate: _Optional[float] = ...) -> None: ...

class GetFeedbackSummaryResponse(_message.Message):
    __slots__ = ("summaries",)
    SUMMARIES_FIELD_NUMBER: _ClassVar[int]
    summaries: _containers.RepeatedCompositeFieldContainer[FeedbackSummary]
    def __init__(self, summaries: _Optional[_Iterable[_Union[FeedbackSummary, _Mapping]]] = ...) -> None: ...

class WatchFeedbackRequest(_message.Message):
    __slots__ = ("pipeline",)
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    pipeline: str
    def __init__(self, pipeline: _Optional[str] = ...) -> None: ...

class WatchFeedbackResponse(_message.Message):
    __slots__ = ("feedback", "inference")
    FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_FIELD_NUMBER: _ClassVar[int]
    feedback: Feedback
    inference: InferenceRecord
    def __init__(self, feedback: _Optional[_Union[Feedback, _Mapping]] = ..., inference: _Optional[_Union[InferenceRecord, _Mapping]] = ...) -> None: ...

class ExportDatasetRequest(_message.Message):
    __slots__ = ("table_uri", "format", "corrected_only", "thumbs_up_only", "pipeline_version", "start_time", "end_time")
    TABLE_URI_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    CORRECTED_ONLY_FIELD_NUMBER: _ClassVar[int]
    THUMBS_UP_ONLY_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_VERSION_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    table_uri: str
    format: DatasetFormat
    corrected_only: bool
    thumbs_up_only: bool
    pipeline_version: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, table_uri: _Optional[str] = ..., format: _Optional[_Union[DatasetFormat, str]] = ..., corrected_only: _Optional[bool] = ..., thumbs_up_only: _Optional[bool] = ..., pipeline_version: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ExportDatasetResponse(_message.Message):
    __slots__ = ("table_uri", "table_version", "row_count")
    TABLE_URI_FIELD_NUMBER: _ClassVar[int]
    TABLE_VERSION_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    table_uri: str
    table_version: int
    row_count: int
    def __init__(self, table_uri: _Optional[str] = ..., table_version: _Optional[int] = ..., row_count: _Optional[int] = ...) -> None: ...

class ListInferencesRequest(_message.Message):
    __slots__ = ("pipeline", "awaiting_review", "page_size", "page_token")
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    AWAITING_REVIEW_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    pipeline: str
    awaiting_review: bool
    page_size: int
    page_token: str
    def __init__(self, pipeline: _Optional[str] = ..., awaiting_review: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListInferencesResponse(_message.Message):
    __slots__ = ("inferences", "next_page_token")
    INFERENCES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    inferences: _containers.RepeatedCompositeFieldContainer[InferenceRecord]
    next_page_token: str
    def __init__(self, inferences: _Optional[_Iterable[_Union[InferenceRecord, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SetQuarantineRequest(_message.Message):
    __slots__ = ("names", "created_by", "quarantined")
    NAMES_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    QUARANTINED_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    created_by: str
    quarantined: bool
    def __init__(self, names: _Optional[_Iterable[str]] = ..., created_by: _Optional[str] = ..., quarantined: _Optional[bool] = ...) -> None: ...

class SetQuarantineResponse(_message.Message):
    __slots__ = ("updated",)
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    updated: int
    def __init__(self, updated: _Optional[int] = ...) -> None: ...
