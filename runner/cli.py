"""The `scenario-runner` command: parse options, run through a Session, report, map to exit codes.

`main(argv) -> int` never raises for anything a user can cause: bad input is exit 2 with a located
message and nothing sent; failures are exit 1; Ctrl-C/SIGTERM is 130 with reports still written.
The run itself is set up by runner/session.py, shared with the pytest plugin; this module only
parses arguments, prints, writes the reports and chooses the exit code. Heavy modules are imported
inside the commands so `--version` and `--help` start fast.
"""

from __future__ import annotations

import os
import sys

from . import __version__

# `scenario-runner --version` must start about as fast as Python itself (issue 12: <= 2 x
# `python -c pass`): this module imports nothing at run time that the interpreter has not loaded
# already (no typing, argparse, enum, pathlib); `main` answers `--version` before any import, and
# argparse (with shutil, textwrap, gettext, locale for --help) comes with the first real command.
# `python -X importtime -m runner --version` shows what it costs.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import TextIO

    from .abort import Stop
    from .files import InputFiles
    from .model import Scenario
    from .report.console import ConsoleReport
    from .results import RunResult, ScenarioResult
    from .session import Session


class ExitStatus:
    """The exit codes (plain ints, so that no enum is imported to print a version)."""

    SUCCESS = 0
    FAILED = 1
    USAGE = 2
    INTERRUPTED = 130


def _parser_class() -> type[argparse.ArgumentParser]:
    import argparse

    class _Parser(argparse.ArgumentParser):
        """argparse that raises instead of exiting, so main() owns every exit code."""

        def error(self, message: str) -> None:  # type: ignore[override]
            from .errors import UsageError

            raise UsageError(f"{self.prog}: {message}", hint=f"see '{self.prog} --help'")

    return _Parser


def build_parser() -> argparse.ArgumentParser:
    _Parser = _parser_class()
    parser = _Parser(
        prog="scenario-runner",
        description="Run declarative REST test scenarios (*.scenario.yaml) and write JUnit XML.",
    )
    parser.add_argument("--version", action="version", version=f"scenario-runner {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def connection(p: argparse.ArgumentParser) -> None:
        """Where the scenarios' requests go and how: the same for `run` and `load`."""
        p.add_argument(
            "--os-cloud",
            metavar="NAME",
            default=os.environ.get("OS_CLOUD"),
            help="take OS_* variables (env.OS_AUTH_URL, ...) from this clouds.yaml entry (default: $OS_CLOUD)",
        )
        p.add_argument("--timeout", type=_positive, metavar="S", help="default request timeout in seconds (default 30)")
        p.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")
        p.add_argument("--cacert", metavar="FILE", help="verify TLS with this CA bundle")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "paths", nargs="+", metavar="PATH", help="scenario files or directories (searched for *.scenario.yaml)"
        )
        p.add_argument(
            "--var",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="set a variable (overrides the scenario's vars); repeatable",
        )
        p.add_argument(
            "--vars-file",
            action="append",
            default=[],
            metavar="FILE",
            help="YAML or JSON file of variables; repeatable",
        )
        p.add_argument(
            "--allow-path",
            action="append",
            default=[],
            metavar="DIR",
            help="let scenarios read files under DIR (default: only under the current directory)",
        )
        p.add_argument(
            "--tag",
            action="append",
            default=[],
            metavar="TAG",
            help="only scenarios with this tag; repeatable (any matches)",
        )
        p.add_argument(
            "-k",
            dest="keyword",
            metavar="EXPR",
            help="only scenarios whose name or path matches, e.g. 'glance and not import'",
        )

    def junit_flavour(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--junit-flavour",
            choices=("standard", "extended"),  # runner/report/junit.py FLAVOURS
            default="standard",
            help="standard (default): valid against Jenkins xUnit's and Surefire's schemas; extended: also "
            "file and line on each testcase (GitLab, GitHub annotations), which those schemas refuse",
        )

    run = sub.add_parser("run", help="run scenarios", description="Run scenarios and write reports.")
    common(run)
    run.add_argument(
        "--junit",
        metavar="PATH",
        default="reports/junit.xml",
        help="JUnit XML report path (default: reports/junit.xml); '' to skip",
    )
    junit_flavour(run)
    run.add_argument("--html", metavar="PATH", help="also write a self-contained HTML report")
    run.add_argument(
        "--summary-md",
        metavar="PATH",
        help="also write a Markdown summary, failures first (for $GITHUB_STEP_SUMMARY or a merge-request note)",
    )
    run.add_argument(
        "--allure",
        metavar="DIR",
        help="also write Allure results into DIR (a result file per scenario, steps, attachments); needs the "
        "[allure] extra",
    )
    run.add_argument(
        "--results",
        metavar="PATH",
        help="also write the results as JSON, for `merge-reports` to join the shards of a run",
    )
    connection(run)
    run.add_argument("--fail-fast", action="store_true", help="stop starting scenarios after the first failure")
    run.add_argument("--jobs", type=int, default=1, metavar="N", help="run N scenarios at once (default 1)")
    run.add_argument("--shard", metavar="K/N", help="run only the K-th of N deterministic parts of the scenarios")
    run.add_argument("-v", "--verbose", action="count", default=0, help="show every exchange")
    run.add_argument("-q", "--quiet", action="store_true", help="print the summary only")

    load = sub.add_parser(
        "load",
        help="run scenarios as a load test (Locust), judged by thresholds",
        description="Run the scenarios as a load test on Locust, in this process: --users virtual users each "
        "loop over the scenarios for --duration seconds; every step is a request in the statistics. Exit 0 "
        "when every --threshold holds, 1 when one fails, 2 for bad input. Needs the [load] extra.",
    )
    common(load)
    load.add_argument("--users", type=int, metavar="N", help="virtual users (at least 1); required but on a worker")
    load.add_argument("--duration", type=_number, metavar="SECONDS", help="how long to load; required but on a worker")
    load.add_argument("--spawn-rate", type=_number, metavar="R", help="users started per second (default: all at once)")
    load.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="EXPR",
        help="[STEP:] METRIC OP VALUE, e.g. 'p95 < 500ms', 'error_rate < 1%%', '\"Create image\": p99 < 2s'; "
        "repeatable (default: error_rate <= 0%%)",
    )
    load.add_argument(
        "--stop-timeout",
        type=_positive,
        default=30.0,
        metavar="S",
        help="at the end, how long users may take to finish their scenario (default 30)",
    )
    load.add_argument(
        "--junit",
        metavar="PATH",
        help="JUnit XML, a testcase per threshold (default: reports/load.xml, none on a worker); '' to skip",
    )
    load.add_argument("--html", metavar="PATH", help="also write Locust's HTML report (statistics and charts)")
    load.add_argument(
        "--csv",
        metavar="PREFIX",
        help="also write Locust's CSV statistics: PREFIX_stats.csv, PREFIX_failures.csv, PREFIX_exceptions.csv",
    )
    dist = load.add_argument_group("distributed (Locust's master and workers)")
    dist.add_argument("--master", action="store_true", help="run no users: the workers do; judge their totals")
    dist.add_argument("--expect-workers", type=int, metavar="N", help="master: start once N workers are connected (1)")
    dist.add_argument(
        "--expect-workers-timeout",
        type=_positive,
        default=60.0,
        metavar="S",
        help="master: fail if they are not all connected within S seconds (default 60)",
    )
    dist.add_argument("--master-bind-host", metavar="HOST", help="master: the interface to listen on (default: all)")
    dist.add_argument("--worker", action="store_true", help="run the users the master gives this process")
    dist.add_argument("--master-host", metavar="HOST", help="worker: the master's host")
    dist.add_argument(
        "--master-port", type=int, metavar="PORT", help="the master's port: it listens on it, workers connect (5557)"
    )
    junit_flavour(load)
    connection(load)

    val = sub.add_parser(
        "validate",
        help="check scenarios without sending anything",
        description="Check format, templates and referenced files; no network.",
    )
    common(val)

    sub.add_parser(
        "schema",
        help="print the scenario format's JSON Schema",
        description="Print the JSON Schema of *.scenario.yaml (for editors and CI).",
    )

    merge = sub.add_parser(
        "merge-reports",
        help="join the results of a run's shards into one JUnit (and HTML) report",
        description="Read the results files of every shard of a run (`run --shard K/N --results PATH`), check "
        "that they are all the shards of one run, and write the reports of the whole run, in the order an "
        "unsharded run gives.",
    )
    merge.add_argument("results", nargs="+", metavar="RESULTS", help="the shards' results files (any order)")
    merge.add_argument("--junit", metavar="PATH", help="write the merged JUnit XML report here")
    junit_flavour(merge)
    merge.add_argument("--html", metavar="PATH", help="write the merged HTML report here")
    merge.add_argument("--summary-md", metavar="PATH", help="write the merged Markdown summary here")
    merge.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")

    curl = sub.add_parser(
        "from-curl",
        help="turn curl command lines into scenario steps",
        description="Read curl commands (a tutorial, a shell history) and print a scenario with one step each.",
    )
    curl.add_argument("source", nargs="?", default="-", metavar="FILE", help="file with curl commands ('-': stdin)")
    curl.add_argument("-o", "--output", metavar="FILE", help="write the scenario here instead of stdout")
    curl.add_argument("--name", default="Converted from curl", help="the scenario's name")

    gabbi = sub.add_parser(
        "from-gabbi",
        help="convert gabbi YAML test files into scenario files",
        description="Convert gabbi YAML files (one scenario each, a step per gabbi test); what cannot be "
        "converted is kept as a comment and reported on stderr as FILE:LINE: message.",
    )
    gabbi.add_argument("sources", nargs="+", metavar="FILE", help="gabbi YAML files")
    gabbi.add_argument(
        "-o",
        "--output",
        metavar="DIR|FILE",
        help="a directory (NAME.scenario.yaml per file; needed for several files) or, for one file, a file "
        "(default: stdout)",
    )
    postman = sub.add_parser(
        "from-postman",
        help="convert a Postman collection (v2.1, v2.0) into scenario files",
        description="Convert a Postman collection and its environment: a scenario file per folder (nested "
        "folders: subdirectories), a step per request; what cannot be converted is kept as a comment and "
        "reported on stderr with the item's path.",
    )
    postman.add_argument("source", metavar="COLLECTION.json", help="an exported collection")
    postman.add_argument("-e", "--environment", metavar="ENV.json", help="an exported Postman environment")
    postman.add_argument(
        "-o", "--output", metavar="DIR", help="write the scenario files under DIR (default: stdout, for one file)"
    )
    postman.add_argument(
        "--one-file",
        action="store_true",
        help="the whole collection as one scenario, in Newman's order (variables set in one folder and read "
        "in another stay known)",
    )

    har = sub.add_parser(
        "from-har",
        help="convert a HAR recording (browser, proxy) into a scenario",
        description="Convert a HAR file: a step per recorded request with the recorded status; secrets "
        "replaced by variables or by captures of the response that gave them; static assets skipped.",
    )
    har.add_argument("source", metavar="FILE.har", help="a HAR file (Chrome, Firefox, mitmproxy, Charles...)")
    har.add_argument("-o", "--output", metavar="FILE|DIR", help="write the scenario here (default: stdout)")
    har.add_argument("--name", help="the scenario's name (default: the HAR file's name)")
    har.add_argument("--keep-static", action="store_true", help="keep images, style sheets, scripts, fonts and media")
    return parser


def _positive(text: str) -> float:
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value):  # inf would wait forever, nan fails every comparison: an internal error later
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number of seconds")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be more than 0 seconds")
    return value


def _number(text: str) -> float:
    """A number checked later, with a message naming the option (--duration 0 is exit 2, located)."""
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    # A descriptor closed before we started (`>&-`) leaves sys.stdout None: the console is lost from
    # the start, which must not stop the run any more than losing it later does.
    out = stdout or sys.stdout or open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    err = stderr or sys.stderr or open(os.devnull, "w")  # noqa: SIM115
    if list(sys.argv[1:] if argv is None else argv) == ["--version"]:  # what argparse would print, sooner
        out.write(f"scenario-runner {__version__}\n")
        out.flush()
        return ExitStatus.SUCCESS
    from .errors import UserError

    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help and --version
            return int(exc.code or 0)
        if args.command == "load":
            from .thresholds import options_from

            args.load = options_from(args)  # bad input is exit 2 before Locust is even imported
            _import_load()  # Locust patches the process with gevent: before anything opens a socket
        if args.command in ("run", "validate", "merge-reports", "load"):
            # One scrub for the console: everything these commands print passes the run's masker,
            # and a console that goes away (a closed pipe) no longer stops them.
            from .redact import ScrubbedStream
            from .session import run_redactor

            redactor = run_redactor(os.environ)
            args.redactor = redactor
            out = ScrubbedStream(out, redactor)  # type: ignore[assignment]  # writes like a TextIO
            err = ScrubbedStream(err, redactor)  # type: ignore[assignment]
        if args.command is None:
            parser.print_help(out)
            return ExitStatus.USAGE
        if args.command == "schema":
            import json

            from .formatcheck import format_schema

            out.write(json.dumps(format_schema(), indent=2) + "\n")
            return ExitStatus.SUCCESS
        if args.command == "validate":
            return _validate(args, out, err)
        if args.command == "from-curl":
            return _from_curl(args, out, err)
        if args.command == "merge-reports":
            return _merge_reports(args, out, err)
        if args.command == "from-gabbi":
            return _from_gabbi(args, out, err)
        if args.command in ("from-postman", "from-har"):
            return _from_export(args, out, err)
        if args.command == "load":
            return _load_test(args, out, err)
        return _run(args, out, err)
    except UserError as exc:
        err.write(exc.render() + "\n")
        return ExitStatus.USAGE
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return ExitStatus.INTERRUPTED


def _from_curl(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .errors import UsageError
    from .fromcurl import convert, to_yaml

    try:
        if args.source == "-":
            text = sys.stdin.read()
        else:
            with open(args.source, encoding="utf-8") as fh:
                text = fh.read()
    except OSError as exc:
        raise UsageError(f"{args.source}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{args.source}: invalid UTF-8 byte 0x{exc.object[exc.start]:02x} at byte {exc.start}",
            hint="save the commands as UTF-8",
        ) from None
    converted = convert(text)
    for warning in converted.warnings:
        err.write(f"warning: {warning}\n")
    document = to_yaml(converted, args.name)
    if args.output:
        from .files import InputFiles
        from .outputs import write

        inputs = InputFiles()
        if args.source != "-":
            inputs.add(args.source)
        write(args.output, document, inputs, f"-o {args.output}", what="scenario")
    else:
        out.write(document)
    return ExitStatus.SUCCESS


def _from_gabbi(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from pathlib import Path

    from .errors import UsageError
    from .files import InputFiles
    from .fromgabbi import convert_file
    from .outputs import write

    sources = [Path(s) for s in args.sources]
    target = Path(args.output) if args.output else None
    to_dir = target is not None and (target.is_dir() or args.output.endswith(("/", "\\")) or len(sources) > 1)
    if target is None and len(sources) > 1:
        raise UsageError(
            f"{len(sources)} files and no -o DIR", hint="give -o DIR: each file becomes DIR/NAME.scenario.yaml"
        )
    if to_dir and target is not None and target.exists() and not target.is_dir():
        raise UsageError(f"-o {args.output}: not a directory", hint="several files need -o DIR")
    stems = [s.name.removesuffix(".yml").removesuffix(".yaml") for s in sources]
    clash = next((n for n in stems if stems.count(n) > 1), None)
    if to_dir and clash:
        raise UsageError(f"two files would both be written as {clash}.scenario.yaml", hint="convert them one by one")
    inputs = InputFiles()
    for source in sources:
        inputs.add(str(source))
    kept = 0
    for source, stem in zip(sources, stems, strict=True):
        if to_dir and target is not None:
            target.mkdir(parents=True, exist_ok=True)
            destination: Path | None = target / f"{stem}.scenario.yaml"
        else:
            destination = target
        out_dir = destination.parent if destination is not None else Path.cwd()
        converted = convert_file(source, out_dir)
        for warning in converted.report.warnings:
            err.write(f"{warning}\n")
        kept += converted.report.kept
        if destination is None:
            out.write(converted.text)
        else:
            write(str(destination), converted.text, inputs, f"-o {args.output}", what="scenario")
            report = converted.report
            err.write(f"{source} -> {destination}: {report.steps} step(s), {report.kept} kept as comments\n")
    if kept:
        err.write(f"{kept} item(s) not converted: kept as '# from-gabbi:' comments (see above)\n")
    return ExitStatus.SUCCESS


def _from_export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """from-postman and from-har: scenario files under -o DIR (or one file to -o FILE or stdout)."""
    from pathlib import Path

    from .errors import UsageError
    from .files import InputFiles
    from .outputs import write

    source = Path(args.source)
    if args.command == "from-postman":
        from .frompostman import convert

        environment = Path(args.environment) if args.environment else None
        converted = convert(source, environment, args.one_file)
        files, report, tag = converted.files, converted.report, "from-postman"
    else:
        from .fromhar import convert as convert_har

        har = convert_har(source, args.name, args.keep_static)
        files, report, tag = {har.file: har.text}, har.report, "from-har"
    for warning in report.warnings:
        err.write(f"warning: {warning}\n")
    inputs = InputFiles()
    inputs.add(str(source))
    if getattr(args, "environment", None):
        inputs.add(args.environment)
    target = Path(args.output) if args.output else None
    to_dir = target is not None and (
        args.command == "from-postman" or target.is_dir() or args.output.endswith(("/", "\\"))
    )
    if target is None and len(files) > 1:
        raise UsageError(
            f"the collection gives {len(files)} scenario files and there is no -o DIR",
            hint="give -o DIR (a file per folder), or --one-file for one scenario on stdout",
        )
    from .yamlsource import MAX_FILE_BYTES

    for relative, text in files.items():  # before writing any: the runner would refuse the file
        size = len(text.encode("utf-8"))
        if size > MAX_FILE_BYTES:
            if args.command == "from-har":
                hint = "leave out --keep-static, or save a shorter recording"
            elif args.one_file:
                hint = "leave out --one-file: a scenario file per folder"
            else:
                hint = "split the folder in Postman"
            raise UsageError(
                f"{source}: the scenario {relative} would be {size / (1 << 20):.1f} MiB, "
                f"more than the {MAX_FILE_BYTES >> 20} MiB the runner reads in a scenario file",
                hint=hint,
            )
    for relative, text in files.items():
        if target is None:
            out.write(text)
            continue
        destination = target / relative if to_dir else target
        destination.parent.mkdir(parents=True, exist_ok=True)
        write(str(destination), text, inputs, f"-o {args.output}", what="scenario")
        err.write(f"{source} -> {destination}\n")
    err.write(f"{report.steps} step(s) in {len(files)} file(s)")
    err.write(f"; {report.kept} item(s) kept as '# {tag}:' comments (see above)\n" if report.kept else "\n")
    return ExitStatus.SUCCESS


def _session(args: argparse.Namespace) -> Session:
    """The run's set-up from the options (runner/session.py); `validate` has only the loading ones."""
    from .session import Session, SessionOptions

    options = SessionOptions(vars=args.var, vars_files=args.vars_file, allow_paths=args.allow_path)
    if args.command == "load":
        options.timeout, options.insecure, options.cacert = args.timeout, args.insecure, args.cacert
        options.os_cloud = args.os_cloud
    if args.command == "run":
        options.timeout, options.insecure, options.cacert = args.timeout, args.insecure, args.cacert
        options.os_cloud, options.jobs = args.os_cloud, args.jobs
        options.keep_exchanges = args.verbose > 0 or bool(args.allure)  # Allure attaches every exchange
    return Session(options, args.redactor)


# `run` keeps the models of this many files loaded; the others are loaded again as they start.
KEEP_LOADED = 256


def _load(
    args: argparse.Namespace, session: Session, err: TextIO, keep: int | None = None
) -> tuple[list[Scenario], int]:
    """Load every file; print one located message per bad file. Returns (selected scenarios, errors)."""
    from .session import select

    scenarios, errors = session.load(args.paths, lambda exc: err.write(exc.render() + "\n"), keep)
    return select(scenarios, args.tag, args.keyword), errors


def _validate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    scenarios, errors = _load(args, _session(args), err)
    if errors:
        err.write(f"{errors} file(s) invalid\n")
        return ExitStatus.USAGE
    steps = sum(len(s.steps) + len(s.finally_steps) for s in scenarios)
    out.write(f"{len(scenarios)} scenario(s), {steps} step(s): valid\n")
    return ExitStatus.SUCCESS


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """One way a run ends: SIGINT, SIGTERM and SIGHUP are handled from loading to the last report
    (runner/schedule.py's signals_handled), and a bug of ours ends the run with its reports
    written, one "internal error" line and exit code 1."""
    from .abort import Stop
    from .schedule import signals_handled

    with signals_handled(Stop()) as stop:
        return _run_scenarios(args, out, err, stop)


def _run_scenarios(args: argparse.Namespace, out: TextIO, err: TextIO, stop: Stop) -> int:
    session = _session(args)
    scenarios, errors = _load(args, session, err, KEEP_LOADED)
    if errors:
        err.write(f"{errors} file(s) invalid; nothing was sent\n")
        return ExitStatus.USAGE
    from .errors import relative_display

    selection = list(dict.fromkeys(relative_display(s.path) for s in scenarios))  # for --results
    part = (1, 1)
    if args.shard:
        from .session import shard

        scenarios = shard(scenarios, args.shard)
        k, _, n = args.shard.partition("/")
        part = (int(k), int(n))
    engine = session.start()  # a bad --os-cloud is exit 2 here, nothing sent
    _check_report_paths(args, session.inputs())  # after the cloud: its clouds.yaml is an input too

    from .report.console import ConsoleReport
    from .schedule import run_all

    console = ConsoleReport(out, verbosity=-1 if args.quiet else args.verbose)
    if console.wants_live and args.jobs == 1:
        engine.options.progress = console.live
    from .results import RunResult, Spool

    # A large run sends every scenario to disk as it ends (enciphered with a key held only in memory),
    # masked once, with every secret of the run, as the reports read it back (results.Spool): memory
    # does not grow with the steps of a run, and a secret learned late is still masked in an early
    # scenario. A run of up to KEEP_LOADED scenarios keeps its results in memory and masks them at the
    # end: spooling costs a masking scan and a cipher pass per scenario, for memory a small run can spare.
    large = len(scenarios) > KEEP_LOADED
    spooled = RunResult(spool=Spool(), mask=args.redactor.mask) if large else RunResult()
    if large:
        # What loading left alive (stand-ins, the kept models, compiled templates, imports) lives
        # until the run ends: out of the collector's sight, each full collection no longer walks it.
        # Measured at 1,000 files: full collections 2.5 s -> 0.7 s (issue 12). The collection first
        # frees the cycles of the models dropped after loading.
        import gc

        gc.collect()
        gc.freeze()
    try:
        try:
            run = run_all(engine, scenarios, console, jobs=args.jobs, fail_fast=args.fail_fast, stop=stop, run=spooled)
        finally:
            session.close()
        return _report(args, out, err, stop, session, console, run, selection, part, scenarios)
    finally:
        if spooled.spool is not None:
            spooled.spool.close()
        if large:
            gc.unfreeze()  # a caller in the same process (pytest, the bench) collects them again


def _report(
    args: argparse.Namespace,
    out: TextIO,
    err: TextIO,
    stop: Stop,
    session: Session,
    console: ConsoleReport,
    run: RunResult,
    selection: list[str],
    part: tuple[int, int],
    scenarios: Sequence[Scenario] = (),
) -> int:
    from functools import partial

    from . import forked
    from .outputs import OutputError
    from .report import html, junit, shards, summary
    from .results import scrub

    scrub(run, args.redactor.mask)  # with every secret the run learned, also after a step ran
    reports = []
    unwritten = False
    environment = _environment(args, session) if args.html else None
    html_writer: Callable[..., None] | None = partial(html.write, environment=environment) if args.html else None
    prerendered = None
    if args.html and args.junit and run.spool is not None and forked.usable():
        # A large run with both reports: the page is rendered on the other core meanwhile (issue 12).
        prerendered = html.Prerendered(run, environment)
        html_writer = prerendered.write
    writers = (
        ("--junit", args.junit, _junit_writer(junit.write, args.junit_flavour)),
        ("--html", args.html, html_writer),
        ("--summary-md", args.summary_md, summary.write),
        ("--results", args.results, partial(shards.write, files=selection, shard=part)),
        ("--allure", args.allure, _allure_writer(scenarios, args.redactor.mask) if args.allure else None),
    )
    try:
        if prerendered is not None:
            prerendered.start()
        for option, report_path, writer in writers:
            if not report_path or writer is None:
                continue
            try:  # checked before the run; the disk may still fill up, or the run read the file (an upload)
                writer(run, report_path, session.policy.inputs, f"{option} {report_path}")
                reports.append(report_path)
            except OutputError as exc:
                err.write(exc.render() + "\n")
                unwritten = True
            except Exception as exc:  # a bug of ours: the other report is still written
                run.internal_errors.append(f"writing {option} {report_path}: {type(exc).__name__}: {exc}")
    finally:
        if prerendered is not None:
            prerendered.reap()
    console.summary(run, reports)
    for error in run.internal_errors:
        err.write(f"internal error in scenario-runner: {error} (a bug: please report it)\n")
    if run.abandoned:
        # Reports are written; threads still waiting on the network would hold the exit until their
        # timeouts. A second Ctrl-C means "now".
        out.flush()
        err.flush()
        os._exit(ExitStatus.INTERRUPTED)
    if run.interrupted or stop.late:
        return ExitStatus.INTERRUPTED
    return ExitStatus.SUCCESS if run.passed and not unwritten else ExitStatus.FAILED


def _allure_writer(
    scenarios: Sequence[Scenario], mask: Callable[[str], str]
) -> Callable[[RunResult, str, InputFiles, str], None]:
    """`--allure DIR`: runner/report/allure.py, with each result's tags read from the scenarios run."""
    from .errors import relative_display
    from .report import allure

    by_name: dict[tuple[str, str], list[str]] = {}
    by_file: dict[str, list[list[str]]] = {}
    for scenario in scenarios:
        path = relative_display(scenario.path)
        by_name[(path, scenario.name)] = list(scenario.tags)
        by_file.setdefault(path, []).append(list(scenario.tags))

    def tags(result: ScenarioResult) -> list[str]:
        """As written; a rendered (templated) name, a file's setup or teardown: the file's own tags."""
        found = by_name.get((result.path, result.name))
        if found is not None:
            return found
        lists = by_file.get(result.path, [])
        return [t for t in lists[0] if all(t in other for other in lists)] if lists else []

    def written(run: RunResult, path: str, inputs: InputFiles, label: str) -> None:
        allure.write(run, path, inputs, label, tags=tags, mask=mask)

    return written


def _junit_writer(write: Callable[..., None], flavour: str) -> Callable[[RunResult, str, InputFiles, str], None]:
    """The JUnit writer with the chosen --junit-flavour, called like the other report writers."""

    def written(run: RunResult, path: str, inputs: InputFiles, label: str) -> None:
        write(run, path, inputs, label, flavour)

    return written


def _environment(args: argparse.Namespace, session: Session) -> dict[str, str]:
    """What the HTML report's environment panel says about the run (option values masked)."""
    import platform
    from importlib import metadata

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "?"

    options = [*args.paths]
    for flag, value in (
        ("--tag", args.tag),
        ("-k", args.keyword),
        ("--shard", args.shard),
        ("--os-cloud", args.os_cloud),
    ):
        for item in value if isinstance(value, list) else [value] if value else []:
            options.append(f"{flag} {item}")
    options += [f"--var {v}" for v in args.var or []] + [f"--vars-file {v}" for v in args.vars_file or []]
    options += [f"--jobs {args.jobs}"] if args.jobs != 1 else []
    options += [f"--timeout {args.timeout:g}"] if args.timeout else []
    options += [flag for flag, on in (("--insecure", args.insecure), ("--fail-fast", args.fail_fast)) if on]
    services = session.engine.services if session.engine is not None else None
    return {
        "run id": services.run_id if services is not None else "",
        "host": platform.node(),
        "versions": f"scenario-runner {__version__}, Python {platform.python_version()}, "
        f"requests {version('requests')}, Jinja2 {version('jinja2')}, {platform.platform()}",
        "options": args.redactor.mask(" ".join(options)),
    }


def _import_load() -> None:
    from .errors import UsageError

    try:
        import locust  # noqa: F401
    except ImportError as exc:  # Locust, or one of its own dependencies (geventhttpclient needs brotli)
        what = "Locust is not installed" if exc.name == "locust" else f"Locust cannot be imported: {exc}"
        raise UsageError(f"load: {what}", hint="pip install 'scenario-runner[load]' (or pip install locust)") from None


def _load_test(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """`load`: options checked and files loaded before anything is sent (exit 2), then the load test
    (runner/load.py) under the same signal handling as `run`; the reports are written also when
    interrupted. Exit 0 when every threshold holds, 1 when one fails (or a fixture failed), 130 when
    interrupted. A worker judges nothing: its exit code says whether its own part went well."""
    from functools import partial

    from .abort import Stop
    from .load import CSV_SUFFIXES, locust_reports, run_load, summary
    from .schedule import signals_handled

    options = args.load
    with signals_handled(Stop()) as stop:
        session = _session(args)
        scenarios, errors = _load(args, session, err)
        if errors:
            err.write(f"{errors} file(s) invalid; nothing was sent\n")
            return ExitStatus.USAGE
        engine = session.start()
        from . import outputs

        reports = [(f"--junit {options.junit}", options.junit)] if options.junit else []
        if options.html:
            reports.append((f"--html {options.html}", options.html))
        if options.csv:
            reports += [(f"--csv {options.csv}", f"{options.csv}{suffix}") for suffix in CSV_SUFFIXES]
        outputs.check(reports, session.inputs())
        try:
            result = run_load(engine, scenarios, options, stop)
        finally:
            session.close(stop)
        from .outputs import OutputError
        from .report import junit
        from .results import scrub

        mask = args.redactor.mask
        scrub(result.run, mask)
        written, unwritten = [], False
        texts = locust_reports(result, options) if result.env is not None else []
        writers: list[tuple[str, str, Callable[[], None]]] = []
        if options.junit:
            junit_path = options.junit
            writers.append(
                (f"--junit {junit_path}", junit_path,
                 lambda: junit.write(result.run, junit_path, session.policy.inputs, f"--junit {junit_path}",
                                     args.junit_flavour))
            )  # fmt: skip
        for label, path, text in texts:  # Locust's own reports, through the one scrub and output policy
            writers.append((label, path, partial(outputs.write, path, mask(text), session.policy.inputs, label)))
        for _label, path, write in writers:
            try:
                write()
                written.append(path)
            except OutputError as exc:
                err.write(exc.render() + "\n")
                unwritten = True
        summary(result, out, written)
        for error in result.run.internal_errors:
            err.write(f"internal error in scenario-runner: {error} (a bug: please report it)\n")
        if result.interrupted or stop.late:
            return ExitStatus.INTERRUPTED
        return ExitStatus.SUCCESS if result.passed and not unwritten else ExitStatus.FAILED


def _check_report_paths(args: argparse.Namespace, inputs: InputFiles) -> None:
    """A report that cannot be written, or would replace an input of the run, must stop the run before
    a request, not end it in a traceback or a lost file (the policy: runner/outputs.py)."""
    from . import outputs

    options = (
        ("--junit", args.junit),
        ("--html", args.html),
        ("--summary-md", args.summary_md),
        ("--results", args.results),
    )
    reports = [(f"{option} {path}", path) for option, path in options if path]
    outputs.check(reports, inputs)
    if args.allure:  # a directory of new files: the extra installed, DIR a directory we may write in
        from .report import allure

        allure.require()
        allure.check(f"--allure {args.allure}", args.allure, inputs)


def _merge_reports(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Join the shards' results files into one run and write its reports (runner/report/shards.py).
    Exit 0 when the whole run passed, 1 when a shard failed (or a report could not be written), 2 for
    inputs that are not all the shards of one run (nothing written)."""
    from . import outputs
    from .errors import UsageError
    from .files import InputFiles
    from .report import html, junit, shards, summary
    from .report.console import ConsoleReport
    from .results import scrub

    if not args.junit and not args.html and not args.summary_md:
        raise UsageError(
            "merge-reports: nothing to write", hint="give --junit PATH, --html PATH, --summary-md PATH or several"
        )
    inputs = InputFiles()
    for path in args.results:
        inputs.add(path)
    targets = [
        (f"{option} {path}", path, writer)
        for option, path, writer in (
            ("--junit", args.junit, _junit_writer(junit.write, args.junit_flavour)),
            ("--html", args.html, html.write),
            ("--summary-md", args.summary_md, summary.write),
        )
        if path
    ]
    outputs.check([(label, path) for label, path, _ in targets], inputs)  # never over a shard's results file
    run = shards.merge([shards.read(path) for path in args.results])
    scrub(run, args.redactor.mask)  # the shards masked theirs; this adds the secrets of this environment
    written, unwritten = [], False
    for label, path, writer in targets:
        try:
            writer(run, path, inputs, label)
            written.append(path)
        except outputs.OutputError as exc:
            err.write(exc.render() + "\n")
            unwritten = True
    if not args.quiet:
        ConsoleReport(out).summary(run, written)
    for error in run.internal_errors:
        err.write(f"internal error in scenario-runner: {error} (a bug: please report it)\n")
    return ExitStatus.SUCCESS if run.passed and not unwritten else ExitStatus.FAILED


def entry() -> None:
    sys.exit(main())
