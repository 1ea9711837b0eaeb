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

class Method(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    METHOD_UNSPECIFIED: _ClassVar[Method]
    METHOD_FULL: _ClassVar[Method]
    METHOD_LORA: _ClassVar[Method]

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_VALIDATING: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLING: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]
METHOD_UNSPECIFIED: Method
METHOD_FULL: Method
METHOD_LORA: Method
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_VALIDATING: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLING: JobState
JOB_STATE_CANCELLED: JobState

class Hyperparameters(_message.Message):
    __slots__ = ("epochs", "learning_rate", "batch_size", "max_seq_length", "lora_rank", "lora_alpha", "merge_lora", "checkpoint_interval_steps")
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_SEQ_LENGTH_FIELD_NUMBER: _ClassVar[int]
    LORA_RANK_FIELD_NUMBER: _ClassVar[int]
    LORA_ALPHA_FIELD_NUMBER: _ClassVar[int]
    MERGE_LORA_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_INTERVAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    epochs: int
    learning_rate: float
    batch_size: int
    max_seq_length: int
    lora_rank: int
    lora_alpha: int
    merge_lora: bool
    checkpoint_interval_steps: int
    def __init__(self, epochs: _Optional[int] = ..., learning_rate: _Optional[float] = ..., batch_size: _Optional[int] = ..., max_seq_length: _Optional[int] = ..., lora_rank: _Optional[int] = ..., lora_alpha: _Optional[int] = ..., merge_lora: _Optional[bool] = ..., checkpoint_interval_steps: _Optional[int] = ...) -> None: ...

class DeepSpeedConfig(_message.Message):
    __slots__ = ("zero_stage", "offload_optimizer", "extra")
    ZERO_STAGE_FIELD_NUMBER: _ClassVar[int]
    OFFLOAD_OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    zero_stage: int
    offload_optimizer: bool
    extra: _struct_pb2.Struct
    def __init__(self, zero_stage: _Optional[int] = ..., offload_optimizer: _Optional[bool] = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class TuningJob(_message.Message):
    __slots__ = ("name", "base_model", "dataset_uri", "dataset_version", "method", "hyperparameters", "deepspeed", "state", "steps_done", "total_steps", "result_model_version", "error", "metrics", "create_time", "end_time", "output_model")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    DATASET_URI_FIELD_NUMBER: _ClassVar[int]
    DATASET_VERSION_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    DEEPSPEED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STEPS_DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    RESULT_MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_MODEL_FIELD_NUMBER: _ClassVar[int]
    name: str
    base_model: str
    dataset_uri: str
    dataset_version: str
    method: Method
    hyperparameters: Hyperparameters
    deepspeed: DeepSpeedConfig
    state: JobState
    steps_done: int
    total_steps: int
    result_model_version: str
    error: str
    metrics: _containers.ScalarMap[str, float]
    create_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    output_model: str
    def __init__(self, name: _Optional[str] = ..., base_model: _Optional[str] = ..., dataset_uri: _Optional[str] = ..., dataset_version: _Optional[str] = ..., method: _Optional[_Union[Method, str]] = ..., hyperparameters: _Optional[_Union[Hyperparameters, _Mapping]] = ..., deepspeed: _Optional[_Union[DeepSpeedConfig, _Mapping]] = ..., state: _Optional[_Union[JobState, str]] = ..., steps_done: _Optional[int] = ..., total_steps: _Optional[int] = ..., result_model_version: _Optional[str] = ..., error: _Optional[str] = ..., metrics: _Optional[_Mapping[str, float]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., output_model: _Optional[str] = ...) -> None: ...

class CreateTuningJobRequest(_message.Message):
    __slots__ = ("job", "idempotency_key")
    JOB_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    job: TuningJob
    idempotency_key: str
    def __init__(self, job: _Optional[_Union[TuningJob, _Mapping]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class GetTuningJobRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListTuningJobsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTuningJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[TuningJob]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[TuningJob, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelTuningJobRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class WatchTuningJobRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class TuningJobEvent(_message.Message):
    __slots__ = ("sequence", "state", "step", "loss", "eval_loss", "checkpoint", "message", "event_time")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    EVAL_LOSS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    state: JobState
    step: int
    loss: float
    eval_loss: float
    checkpoint: str
    message: str
    event_time: _timestamp_pb2.Timestamp
    def __init__(self, sequence: _Optional[int] = ..., state: _Optional[_Union[JobState, str]] = ..., step: _Optional[int] = ..., loss: _Optional[float] = ..., eval_loss: _Optional[float] = ..., checkpoint: _Optional[str] = ..., message: _Optional[str] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WatchTuningJobResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: TuningJobEvent
    def __init__(self, event: _Optional[_Union[TuningJobEvent, _Mapping]] = ...) -> None: ...
