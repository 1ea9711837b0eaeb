-- One database per service: a service never reads another's store.
CREATE DATABASE retrieval OWNER llmops;
CREATE DATABASE prompt OWNER llmops;
CREATE DATABASE generation OWNER llmops;
CREATE DATABASE feedback OWNER llmops;
CREATE DATABASE pipeline OWNER llmops;  -- the inference outbox
CREATE DATABASE finetuning OWNER llmops;
