# llmops: `make run` starts the stack and runs the main job; `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements/*.txt pyproject.toml | sha256sum | cut -c1-12)

.PHONY: setup protos check-protos lint-protos test test-slow test-all lint run down bench bazel-config bazel-test clean

setup: $(STAMP)

$(STAMP):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements/dev.txt
	$(BIN)/pip install --quiet --no-deps -r requirements/data.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-* && touch $@

protos: setup
	$(BIN)/python tools/gen_protos.py

check-protos: setup
	$(BIN)/python tools/gen_protos.py --check

lint: setup
	$(BIN)/ruff check .

# buf lint (STANDARD, with the AIP exceptions in buf.yaml); buf comes from npm's @bufbuild/buf.
BUF := .tools/node_modules/.bin/buf
$(BUF):
	npm install --silent --no-audit --no-fund --prefix .tools @bufbuild/buf@1.75.0

lint-protos: $(BUF)
	$(BUF) lint

# The fast lane: everything but the tests marked slow (whole stacks of processes, training,
# races); `make test-slow` runs those, `make test-all` both. CI runs the two lanes.
test: setup
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

test-all: setup
	$(BIN)/python -m pytest -q

run: setup
	$(BIN)/python -m llmops.demo

down:
	$(BIN)/llmops down

bench: setup
	$(BIN)/python -m bench.grpc_hop

# Bazel needs the virtualenv's interpreter on PATH; this writes that (machine-specific) setting
# into .bazelrc.user, which .bazelrc imports and git ignores.
bazel-config: setup
	printf 'build --action_env=PATH=%s:/usr/bin:/bin\ntest --test_env=PATH=%s:/usr/bin:/bin\n' \
		"$(CURDIR)/$(BIN)" "$(CURDIR)/$(BIN)" > .bazelrc.user

bazel-test: bazel-config
	bazel test //...

clean:
	rm -rf $(VENV) .llmops .tools bazel-*
