"""A scenario's variables: the scope its templates see, and the secrets learned as values enter it.

Every value enters the scope through here (--var, a matrix row, the scenario's `vars`, a step's
`vars`, captures), so one rule decides what becomes a secret: a name the scenario lists in
`secrets:`, or a name that looks secret (runner/redact.py). Values set on the command line win over
everything the scenario says, except the values of run-level fixtures (fixtures.py): they seed the
scope after --var, as copies, and nothing may assign them again (the loader refuses it; `assign`
is the last guard).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..context import RunServices
from ..errors import UserError
from ..model import Scenario, Step
from ..redact import Redactor, is_secret_name
from ..results import Failure, Outcome, StepResult
from ..templating import Compiled, Scope, Template
from .options import RunOptions


class Variables:
    """The values of one scenario run, shared by its steps; each step renders in a copy (`step_scope`)."""

    def __init__(
        self,
        scenario: Scenario,
        services: RunServices,
        options: RunOptions,
        redactor: Redactor,
        fixtures: Mapping[str, Any] | None = None,
        inherited: Mapping[str, Any] | None = None,
    ):
        self.scenario = scenario
        self.fixtures: Mapping[str, Any] = fixtures or {}  # names the scenario's fixtures give it
        # A test's start (runner/engine/suites.py): its file's vars and matrix row as its setup
        # rendered them, and the setup's captures. The test renders only its own `vars`.
        self.inherited = inherited
        self.services = services
        self.options = options
        self.redactor = redactor
        self.context: dict[str, Any] = Scope.with_globals()
        # The value of each include's `vars` (and its fragment's), rendered once per include of this
        # run: `u: "{{ uuid() }}"` is the same in every step of one include, and differs between two
        # includes of the same fragment. Keyed by the ScopeVar object: the loader makes one per include.
        self._include_values: dict[int, Any] = {}
        self._iterations = 0  # loop iterations so far: each gets the next loop.id
        self.id = ""  # scenario.id, set by `setup`

    def setup(self) -> None:
        """The names every step sees: env, run_id, scenario; then --var, the matrix row, `vars`.

        `scenario.id` is `<run id>-s<number>`: the scenario's number in the run's load order (so a
        matrix row has its own), `f<n>` for a fixture's set-up in the order they start.
        """
        services = self.services
        run_id = services.run_id
        if self.scenario.matrix_index is not None:
            run_id = f"{run_id}-{self.scenario.matrix_index}"
        number = self.scenario.number
        self.id = f"{services.run_id}-" + (f"s{number:03d}" if number is not None else services.next_fixture_id())
        ctx = self.context
        ctx.update(env=services.environ, run_id=run_id)
        ctx["scenario"] = {"name": self.scenario.name, "file": str(self.scenario.path), "id": self.id}
        for name, value in self.options.cli_vars.items():
            if name not in self.fixtures:  # the fixture had it as one of its inputs
                self.assign(name, value)  # a --var may set a name the scenario lists in `secrets:`
        ctx.update(self.fixtures)  # their secrets were learned when the fixture ran
        helpers = services.helpers(services.directory_of(self.scenario.path), self.scenario.digest_algorithms)
        fixed = set(self.options.cli_vars)
        if self.inherited is not None:  # secrets among them were learned when the setup ran
            ctx.update({n: v for n, v in self.inherited.items() if n not in fixed})
        for name, compiled in (self.scenario.matrix_row or {} if self.inherited is None else {}).items():
            if name not in fixed:
                self.assign(name, compiled.render(Scope({**ctx, **helpers})))
        fixed |= set(self.scenario.matrix_row or {})
        for name, compiled in self.scenario.vars:
            if name not in fixed:
                self.assign(name, compiled.render(Scope({**ctx, **helpers})))

    def render_name(self) -> str:
        """The scenario's name, once, after `setup`: its template rendered with the scenario's values
        (the matrix label appended), or as written. Templates see it as `scenario.name` from now on."""
        scenario = self.scenario
        if scenario.title is None:
            return scenario.name
        local = Scope(self.context)
        local.update(self.services.helpers(self.services.directory_of(scenario.path), scenario.digest_algorithms))
        name = render_name(scenario.title, local)
        if scenario.label is not None:
            name = f"{name} [{scenario.label}]"
        self.context["scenario"] = {**self.context["scenario"], "name": name}
        return name

    def iteration_id(self) -> str:
        """A loop iteration's `loop.id`: `<scenario.id>-i<n>`, n counting the scenario's iterations."""
        self._iterations += 1
        return f"{self.id}-i{self._iterations:03d}"

    def assign(self, name: str, value: Any, local_name: str | None = None) -> None:
        """Set `name`; a value is secret by its name, or by the name its fragment gave it (`local_name`)."""
        if name in self.fixtures:
            raise UserError(f"'{name}' is a value of a fixture: read-only", hint="use another name")
        self.context[name] = value
        if any(n in self.scenario.secrets or is_secret_name(n) for n in (name, local_name or name)):
            self.redactor.add(value)
        elif isinstance(value, (dict, list)):  # `creds: {admin: {password: ...}}` from a vars file
            self.redactor.add_from_json(value)

    def step_scope(self, step: Step) -> Scope:
        """What one step renders in: the scenario's values and the helpers bound to the step's file.

        In a fragment included with `capture_as:`, the fragment's names for its outputs read the
        renamed values (or nothing yet), never a value of the same name from outside.
        """
        local = Scope(self.context)
        local.update(self.services.helpers(step.base_dir, self.scenario.digest_algorithms))
        for name, renamed in step.aliases.items():
            if renamed in self.context:
                local[name] = self.context[renamed]
            else:
                local.pop(name, None)
        return local

    def render_step_vars(self, step: Step, local: dict[str, Any]) -> None:
        """The `vars` of the includes the step came from, in the step's scope only (once per include)."""
        rendered = self._include_values
        for var in step.scope:
            if var.name in self.options.cli_vars or (var.default and var.name in self.context):
                continue
            key = id(var)
            if key in rendered:
                local[var.name] = rendered[key]
                continue
            local[var.name] = rendered[key] = value = var.value.render(local)
            if var.name in self.scenario.secrets or is_secret_name(var.name):
                self.redactor.add(value)

    def capture(self, step: Step, local: dict[str, Any], result: StepResult, strict: bool) -> None:
        """Capture values; when `strict` is false (the step already failed) capture what is there."""
        for name, compiled in step.captures.items():
            try:
                value = compiled.render(local)
            except UserError as exc:
                if not strict:
                    continue
                result.outcome = Outcome.FAILED
                result.failures.append(Failure(f"capture {name}: {exc.message}", exc.location or step.loc))
                continue
            self.assign(step.aliases.get(name, name), value, local_name=name)
            local[name] = value


def render_name(title: Compiled, local: Scope) -> str:
    """A scenario's or step's name from its template: one line of text, not empty."""
    name = str(title.render(local))
    if not name.strip():
        template = title.value
        raise UserError(
            f"the name {template.source!r} renders as empty text" if isinstance(template, Template) else "empty name",
            template.loc if isinstance(template, Template) else None,
            "give it some literal text too, such as 'Create {{ image_name }}'",
        )
    return name
