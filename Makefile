# Two commands for a fresh machine:
#   make demo   install what the demo needs, export pretrained EfficientNet-Lite0, classify real photos on every CPU backend
#   make test   install everything and run the test suite (what CI runs); make test-fast: the quick subset
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast install data cpp-deps clean bench

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# The exact versions CI runs and the suite passed with (pyproject.toml declares ranges); tools/lock.py rewrites it
LOCK := constraints.txt
PIP := $(BIN)/pip install -q -c $(LOCK)
# TORCH_INDEX=https://download.pytorch.org/whl/cpu: PyTorch's CPU build instead of the CUDA one (no NVIDIA libraries)
TORCH_FROM := $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
# What `edgecls demo` runs on: export to every CPU format, INT8 (NNCF, ONNX Runtime, PT2E), ExecuTorch, the bench
# report. Not the robustness, ModelOpt and test tooling that `make test` adds.
DEMO_EXTRAS := torch,onnx,openvino,tflite-export,compress,executorch,bench

# torch and torchvision first: pip takes both from the local wheel cache on this project's machines; resolving them
# through the extras alone could pull a different CUDA build
$(VENV)/.installed: pyproject.toml $(LOCK) | $(BIN)/python
	$(PIP) $(TORCH_FROM) torch torchvision
	$(PIP) -e '.[dev]'
	touch $@ $(VENV)/.installed-demo

$(VENV)/.installed-demo: pyproject.toml $(LOCK) | $(BIN)/python
	$(PIP) $(TORCH_FROM) torch torchvision
	$(PIP) -e '.[$(DEMO_EXTRAS)]'
	touch $@

# tritonclient, the client tests/test_serve.py and benchmarks/serve_load.py talk to `edgecls serve` with, in a venv of its
# own: it pins ml-dtypes<=0.5.4, older than what the onnx/jax stack in .venv has (as a client on another machine would be)
TRITON_VENV ?= .venv-tritonclient
$(TRITON_VENV)/bin/python:
	$(PY) -m venv $(TRITON_VENV)
	$(TRITON_VENV)/bin/pip install -q 'tritonclient[http]==2.73.0'

install: $(VENV)/.installed $(TRITON_VENV)/bin/python data cpp-deps

# Real training data, offline: Fashion-MNIST from Debian's dataset-fashion-mnist (tests skip with a reason without it)
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
data: $(FMNIST)
$(FMNIST):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get install -y -qq dataset-fashion-mnist || (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist)) >/dev/null; \
	else echo "note: install Debian's dataset-fashion-mnist (as root) for the training tests and recipe"; fi

# The C++ side (examples/cpp, tests/test_cpp.py): Debian's CMake, g++, OpenCV 4.6, nlohmann-json and OpenSSL; OpenVINO's
# C++ headers and CMake config come with its pip wheel. Without them tests/test_cpp.py skips with the reason.
CPP_PACKAGES := cmake g++ libopencv-dev nlohmann-json3-dev libssl-dev
cpp-deps:
	@if dpkg -s $(CPP_PACKAGES) >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get install -y -qq --no-install-recommends $(CPP_PACKAGES) || (apt-get update -qq && apt-get install -y -qq --no-install-recommends $(CPP_PACKAGES))) >/dev/null; \
	else echo "note: install the Debian packages $(CPP_PACKAGES) (as root) for the C++ example and its tests"; fi

demo: $(VENV)/.installed-demo
	$(BIN)/edgecls demo -o demo_out

test: install
	EDGECLS_REQUIRE_DATA=1 $(BIN)/python -m pytest -q tests

# the edit-test loop: every test not marked slow (<= 5 min here); `make test` runs everything, as CI does
test-fast: install
	EDGECLS_REQUIRE_DATA=1 $(BIN)/python -m pytest -q -m "not slow" tests

bench: install
	$(BIN)/python benchmarks/preprocess_bench.py

clean:
	rm -rf $(VENV) $(TRITON_VENV) demo_out .pytest_cache
