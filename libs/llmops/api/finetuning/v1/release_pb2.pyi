import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from llmops.api.finetuning.v1 import evaluation_pb2 as _evaluation_pb2
from llmops.api.finetuning.v1 import finetuning_pb2 as _finetuning_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReleaseMargins(_message.Message):
    __slots__ = ("max_error_rate_increase", "max_thumbs_down_rate_increase", "max_latency_p95_ratio", "min_requests", "max_judge_score_drop", "min_judged")
    MAX_ERROR_RATE_INCREASE_FIELD_NUMBER: _ClassVar[int]
    MAX_THUMBS_DOWN_RATE_INCREASE_FIELD_NUMBER: _ClassVar[int]
    MAX_LATENCY_P95_RATIO_FIELD_NUMBER: _ClassVar[int]
    MIN_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    MAX_JUDGE_SCORE_DROP_FIELD_NUMBER: _ClassVar[int]
    MIN_JUDGED_FIELD_NUMBER: _ClassVar[int]
    max_error_rate_increase: float
    max_thumbs_down_rate_increase: float
    max_latency_p95_ratio: float
    min_requests: int
    max_judge_score_drop: float
    min_judged: int
    def __init__(self, max_error_rate_increase: _Optional[float] = ..., max_thumbs_down_rate_increase: _Optional[float] = ..., max_latency_p95_ratio: _Optional[float] = ..., min_requests: _Optional[int] = ..., max_judge_score_drop: _Optional[float] = ..., min_judged: _Optional[int] = ...) -> None: ...

class Release(_message.Message):
    __slots__ = ("name", "candidate", "alias", "steps", "interval_s", "margins", "stable_version", "candidate_version", "state", "steps_passed", "percent", "outcome", "candidate_signals", "stable_signals", "judge", "judge_sample_percent", "created_by", "create_time", "end_time")
    class CandidateSignalsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class StableSignalsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    MARGINS_FIELD_NUMBER: _ClassVar[int]
    STABLE_VERSION_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STEPS_PASSED_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_SIGNALS_FIELD_NUMBER: _ClassVar[int]
    STABLE_SIGNALS_FIELD_NUMBER: _ClassVar[int]
    JUDGE_FIELD_NUMBER: _ClassVar[int]
    JUDGE_SAMPLE_PERCENT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    candidate: str
    alias: str
    steps: _containers.RepeatedScalarFieldContainer[int]
    interval_s: float
    margins: ReleaseMargins
    stable_version: str
    candidate_version: str
    state: _finetuning_pb2.JobState
    steps_passed: int
    percent: int
    outcome: str
    candidate_signals: _containers.ScalarMap[str, float]
    stable_signals: _containers.ScalarMap[str, float]
    judge: _evaluation_pb2.JudgeSpec
    judge_sample_percent: int
    created_by: str
    create_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., candidate: _Optional[str] = ..., alias: _Optional[str] = ..., steps: _Optional[_Iterable[int]] = ..., interval_s: _Optional[float] = ..., margins: _Optional[_Union[ReleaseMargins, _Mapping]] = ..., stable_version: _Optional[str] = ..., candidate_version: _Optional[str] = ..., state: _Optional[_Union[_finetuning_pb2.JobState, str]] = ..., steps_passed: _Optional[int] = ..., percent: _Optional[int] = ..., outcome: _Optional[str] = ..., candidate_signals: _Optional[_Mapping[str, float]] = ..., stable_signals: _Optional[_Mapping[str, float]] = ..., judge: _Optional[_Union[_evaluation_pb2.JudgeSpec, _Mapping]] = ..., judge_sample_percent: _Optional[int] = ..., created_by: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateReleaseRequest(_message.Message):
    __slots__ = ("release", "idempotency_key")
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    release: Release
    idempotency_key: str
    def __init__(self, release: _Optional[_Union[Release, _Mapping]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class GetReleaseRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListReleasesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListReleasesResponse(_message.Message):
    __slots__ = ("releases", "next_page_token")
    RELEASES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    releases: _containers.RepeatedCompositeFieldContainer[Release]
    next_page_token: str
    def __init__(self, releases: _Optional[_Iterable[_Union[Release, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class AbortReleaseRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class WatchReleaseRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class WatchReleaseResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _finetuning_pb2.TuningJobEvent
    def __init__(self, event: _Optional[_Union[_finetuning_pb2.TuningJobEvent, _Mapping]] = ...) -> None: ...
