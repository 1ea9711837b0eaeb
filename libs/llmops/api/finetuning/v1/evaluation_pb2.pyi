import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from llmops.api.finetuning.v1 import finetuning_pb2 as _finetuning_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TargetKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TARGET_KIND_UNSPECIFIED: _ClassVar[TargetKind]
    TARGET_KIND_MODEL: _ClassVar[TargetKind]
    TARGET_KIND_PIPELINE: _ClassVar[TargetKind]
    TARGET_KIND_ROUTE: _ClassVar[TargetKind]
TARGET_KIND_UNSPECIFIED: TargetKind
TARGET_KIND_MODEL: TargetKind
TARGET_KIND_PIPELINE: TargetKind
TARGET_KIND_ROUTE: TargetKind

class JudgeSpec(_message.Message):
    __slots__ = ("route", "rubric")
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    RUBRIC_FIELD_NUMBER: _ClassVar[int]
    route: str
    rubric: str
    def __init__(self, route: _Optional[str] = ..., rubric: _Optional[str] = ...) -> None: ...

class Evaluation(_message.Message):
    __slots__ = ("name", "target", "baseline", "dataset_uri", "dataset_version", "concurrency", "limit", "max_tokens", "judge", "state", "target_kind", "target_version", "baseline_version", "rows_done", "total_rows", "metrics", "baseline_metrics", "comparisons", "recorded", "error", "created_by", "create_time", "end_time")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class BaselineMetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    DATASET_URI_FIELD_NUMBER: _ClassVar[int]
    DATASET_VERSION_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    JUDGE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TARGET_KIND_FIELD_NUMBER: _ClassVar[int]
    TARGET_VERSION_FIELD_NUMBER: _ClassVar[int]
    BASELINE_VERSION_FIELD_NUMBER: _ClassVar[int]
    ROWS_DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ROWS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    BASELINE_METRICS_FIELD_NUMBER: _ClassVar[int]
    COMPARISONS_FIELD_NUMBER: _ClassVar[int]
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    target: str
    baseline: str
    dataset_uri: str
    dataset_version: str
    concurrency: int
    limit: int
    max_tokens: int
    judge: JudgeSpec
    state: _finetuning_pb2.JobState
    target_kind: TargetKind
    target_version: str
    baseline_version: str
    rows_done: int
    total_rows: int
    metrics: _containers.ScalarMap[str, float]
    baseline_metrics: _containers.ScalarMap[str, float]
    comparisons: _containers.RepeatedCompositeFieldContainer[Comparison]
    recorded: bool
    error: str
    created_by: str
    create_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., target: _Optional[str] = ..., baseline: _Optional[str] = ..., dataset_uri: _Optional[str] = ..., dataset_version: _Optional[str] = ..., concurrency: _Optional[int] = ..., limit: _Optional[int] = ..., max_tokens: _Optional[int] = ..., judge: _Optional[_Union[JudgeSpec, _Mapping]] = ..., state: _Optional[_Union[_finetuning_pb2.JobState, str]] = ..., target_kind: _Optional[_Union[TargetKind, str]] = ..., target_version: _Optional[str] = ..., baseline_version: _Optional[str] = ..., rows_done: _Optional[int] = ..., total_rows: _Optional[int] = ..., metrics: _Optional[_Mapping[str, float]] = ..., baseline_metrics: _Optional[_Mapping[str, float]] = ..., comparisons: _Optional[_Iterable[_Union[Comparison, _Mapping]]] = ..., recorded: _Optional[bool] = ..., error: _Optional[str] = ..., created_by: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Comparison(_message.Message):
    __slots__ = ("metric", "value", "baseline_value", "difference", "ci_low", "ci_high", "p_value", "rows")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_VALUE_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    CI_LOW_FIELD_NUMBER: _ClassVar[int]
    CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    metric: str
    value: float
    baseline_value: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    rows: int
    def __init__(self, metric: _Optional[str] = ..., value: _Optional[float] = ..., baseline_value: _Optional[float] = ..., difference: _Optional[float] = ..., ci_low: _Optional[float] = ..., ci_high: _Optional[float] = ..., p_value: _Optional[float] = ..., rows: _Optional[int] = ...) -> None: ...

class EvaluationRow(_message.Message):
    __slots__ = ("index", "side", "question", "reference", "answer", "scores", "latency_ms", "output_tokens", "judge_score", "judge_reason", "error", "cited")
    class ScoresEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    JUDGE_SCORE_FIELD_NUMBER: _ClassVar[int]
    JUDGE_REASON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CITED_FIELD_NUMBER: _ClassVar[int]
    index: int
    side: str
    question: str
    reference: str
    answer: str
    scores: _containers.ScalarMap[str, float]
    latency_ms: float
    output_tokens: int
    judge_score: float
    judge_reason: str
    error: str
    cited: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, index: _Optional[int] = ..., side: _Optional[str] = ..., question: _Optional[str] = ..., reference: _Optional[str] = ..., answer: _Optional[str] = ..., scores: _Optional[_Mapping[str, float]] = ..., latency_ms: _Optional[float] = ..., output_tokens: _Optional[int] = ..., judge_score: _Optional[float] = ..., judge_reason: _Optional[str] = ..., error: _Optional[str] = ..., cited: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateEvaluationRequest(_message.Message):
    __slots__ = ("evaluation", "idempotency_key")
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    evaluation: Evaluation
    idempotency_key: str
    def __init__(self, evaluation: _Optional[_Union[Evaluation, _Mapping]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class GetEvaluationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListEvaluationsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "target_version")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TARGET_VERSION_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    target_version: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., target_version: _Optional[str] = ...) -> None: ...

class ListEvaluationsResponse(_message.Message):
    __slots__ = ("evaluations", "next_page_token")
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    evaluations: _containers.RepeatedCompositeFieldContainer[Evaluation]
    next_page_token: str
    def __init__(self, evaluations: _Optional[_Iterable[_Union[Evaluation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelEvaluationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class WatchEvaluationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class WatchEvaluationResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _finetuning_pb2.TuningJobEvent
    def __init__(self, event: _Optional[_Union[_finetuning_pb2.TuningJobEvent, _Mapping]] = ...) -> None: ...

class ListEvaluationRowsRequest(_message.Message):
    __slots__ = ("name", "page_size", "page_token")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    page_size: int
    page_token: str
    def __init__(self, name: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListEvaluationRowsResponse(_message.Message):
    __slots__ = ("rows", "next_page_token")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[EvaluationRow]
    next_page_token: str
    def __init__(self, rows: _Optional[_Iterable[_Union[EvaluationRow, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
