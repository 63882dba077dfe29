# Two commands: `make app` (set up, then start the chat on 127.0.0.1) and
# `make test` (set up, then run the tests). Both are idempotent: a second run
# only re-installs when requirements change.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 8501
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: app test setup system-deps index clean

app: setup index
	$(PY) -m streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT) \
		--server.headless true --server.maxUploadSize 10 --browser.gatherUsageStats false

test: setup system-deps
	$(PY) -m pytest

setup: $(STAMP)

# Chromium and CJK fonts for the browser test, from Debian (apt-get); instant when present.
system-deps:
	bash scripts/system-deps.sh

$(PY):
	$(PYTHON) -m venv $(VENV)

# llama-cpp-python compiles from source the first time (~7 min on 2 cores); pip caches the wheel.
$(STAMP): requirements.txt constraints.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt -c constraints.txt
	touch $(STAMP)

index: setup
	$(PY) -m rag.index

clean:
	rm -rf $(VENV) index/CURRENT index/builds index/embeddings.sqlite index/.lock
