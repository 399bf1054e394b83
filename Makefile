# The two commands of the README, and the pieces they are made of.
#   make tutorial   set everything up, start the local Keystone + Glance, run the tutorial scenarios/glance/*.scenario.yaml
#   make test       set everything up, start the testbed, run the whole test suite
# Everything is idempotent: a second run reuses the venvs and a running testbed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TESTBED := $(PYTHON) testbed/testbed.py

.PHONY: tutorial test venv testbed-start testbed-stop lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[test]'
	# Byte-compiled now, as a wheel install would be: an editable install leaves it to the first import,
	# which never writes it where PYTHONDONTWRITEBYTECODE is set (~0.1 s more per scenario-runner process)
	$(BIN)/python -m compileall -q runner
	# pytest 8 beside the venv's pytest 9: the plugin's --lf test runs under both (issue 14, point 3)
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps --upgrade --target $(VENV)/pytest8 'pytest>=8,<9'
	touch $@

venv: $(BIN)/.installed

testbed-start:
	$(TESTBED) start

testbed-stop:
	$(TESTBED) stop

tutorial: venv testbed-start
	set -a && . .testbed/openrc && set +a && \
	  $(BIN)/scenario-runner run scenarios/glance/*.scenario.yaml --junit reports/junit.xml

test: venv testbed-start
	set -a && . .testbed/openrc && set +a && \
	  $(BIN)/python -m pytest tests

lint: venv
	$(BIN)/ruff check runner tests && $(BIN)/ruff format --check runner tests && $(BIN)/mypy && $(BIN)/lint-imports

clean:
	rm -rf $(VENV) reports/*.xml
