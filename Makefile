# Two commands on a fresh machine: `make demo` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS := dask,kubernetes,slurm,plot,spice,dispersion,test
# The image: tagged with the project's version (the Kubernetes manifests refuse :latest); podman or docker.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE ?= gmat-sweep:$(VERSION)
CONTAINER ?= $(shell command -v podman >/dev/null 2>&1 && echo podman || echo docker)
PYTHON_IMAGE ?= python:3.12-slim-bookworm
IMAGE_BUILD_FLAGS ?=

.PHONY: demo test bench clean venv image

venv: $(STAMP)

$(STAMP): pyproject.toml scripts/find-python.sh
	@PYTHON=$$(sh scripts/find-python.sh) || exit 1; \
	if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then \
		echo "creating $(VENV) with $$PYTHON"; rm -rf $(VENV); "$$PYTHON" -m venv $(VENV) || exit 1; \
	fi
	$(PY) -m pip install --quiet --upgrade pip
	@# the project was once installed as 'gmat-sweep' (the registry's name of another project): drop that copy
	@$(PY) -m pip uninstall --quiet --yes gmat-sweep 2>/dev/null; rm -rf src/gmat_sweep.egg-info
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

# Most of the suite waits (on GMAT runs in worker processes, clusters starting, timeouts): two pytest processes
# keep two cores busy. Whole files go to one process (--dist loadfile): a module's shared pool or cluster is started
# once, and the emulated Kubernetes tests, which need fixed ports, never run beside each other.
TEST_PROCESSES ?= 2

test: $(STAMP)
	$(PY) -m pytest -n $(TEST_PROCESSES) --dist loadfile

bench: $(STAMP)
	$(PY) benchmarks/local_throughput.py

image:
	$(CONTAINER) build $(IMAGE_BUILD_FLAGS) --build-arg PYTHON_IMAGE=$(PYTHON_IMAGE) \
		--build-arg GMAT_SWEEP_VERSION=$(VERSION) -f docker/Dockerfile -t $(IMAGE) .

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
