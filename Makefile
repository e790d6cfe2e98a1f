# The course's commands. Each works as the first command on a fresh clone: `setup` runs first.
#   make lab       JupyterLab on the lessons
#   make run       execute every lesson headless; executed notebooks and HTML go to build/
#   make test      unit tests + every lesson under nbval, in fast mode (what CI runs)
#   make prefetch  download the full datasets into the data root, for a classroom without network
#   make student   student copies of the lessons (answers replaced by TODOs) in student/
#   make translations  the Chinese edition in zh/, from the lessons and translations/zh/
#   make bench     speed benchmarks; tables in benchmarks/README.md
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.course-installed

.PHONY: setup lab run test prefetch student translations bench badges clean

setup: $(STAMP)

# Re-installs only when requirements.txt or pyproject.toml changed since the last install.
$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

lab: setup
	$(BIN)/jupyter lab notebooks/

run: setup
	$(BIN)/python tools/run_notebooks.py

test: setup
	COURSE_FAST=1 COURSE_STRICT=1 $(BIN)/python -m pytest

prefetch: setup
	$(BIN)/python -m helpers.prefetch

student: setup
	$(BIN)/python tools/make_student.py

translations: setup
	$(BIN)/python tools/make_translation.py

# Speed, measured side by side; rewrites the tables in benchmarks/README.md.
bench: setup
	$(BIN)/python -m benchmarks.bench_pipeline
	$(BIN)/python -m benchmarks.bench_training
	$(BIN)/python -m benchmarks.bench_scaling
	$(BIN)/python -m benchmarks.bench_speedrun --examples --write --skip-without-data

# Write every lesson's Colab badge and setup cell from tools/set_setup_cells.py and the URL in pyproject.toml, and
# regenerate the student copies from them.
badges: setup
	$(BIN)/python tools/set_setup_cells.py
	$(BIN)/python tools/make_student.py
	$(BIN)/python tools/make_translation.py

clean:
	rm -rf build/ .pytest_cache/
