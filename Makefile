# rtstyle: `make demo` and `make test` each build .venv with pip on a fresh machine.
# torch is pinned only in constraints.txt (an unpinned install pulls a multi-GB CUDA build here;
# 2.13.0 is the CPU wheel that lies in /opt/wheels on the project's machines).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)

.PHONY: install test demo demo-transfer clips clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(FIND_LINKS) -c constraints.txt -e '.[test,data]'
	# the judges' smoke test (tests/test_judge.py): torchcrepe without its torchaudio, which
	# it needs only for a file loader the judge does not use (and whose wheel pins another torch)
	$(PY) -m pip install -q $(FIND_LINKS) -c constraints.txt 'pocketsphinx>=5.0' 'resampy>=0.4'
	$(PY) -m pip install -q --no-deps 'torchcrepe>=0.0.22'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

# The committed clips through every bundled style with the live engine, and a figure (< 1 min).
demo: $(STAMP)
	$(PY) tools/demo.py --out out --overwrite

# The seed method on the committed clips: speech in the timbre of a cello melody (~1 min).
demo-transfer: $(STAMP)
	mkdir -p out
	$(VENV)/bin/rtstyle transfer examples/speech.flac examples/melody.flac \
		-o out/speech_as_cello.wav --plot out/speech_as_cello.png \
		--log-json out/speech_as_cello.json --overwrite
	$(PY) tools/eval_quality.py --content examples/speech.flac --style examples/melody.flac \
		out/speech_as_cello.wav

# Regenerate the committed demo clips (needs espeak-ng, fluidsynth, timgm6mb-soundfont).
clips: $(STAMP)
	$(PY) tools/make_demo_clips.py --overwrite

clean:
	rm -rf out .pytest_cache
