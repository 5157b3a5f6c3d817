"""What a child's end means for the items it was given.

The child's reports say how each test it finished went; how the child ended
says whether those reports can be believed and what became of the rest. A
child that crashed or hung on an item, that never reached some items, whose
exit status contradicts its reports, or one of whose tests forked a copy that
went on running pytest: each of these becomes an ordinary report on the items
it touches, so that a run can never end green when the child did not.

Pure functions of a :class:`~pytest_envmatrix.runner.ChildOutcome`: no
processes, no threads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pytest

from .runner import ChildOutcome


@dataclass(frozen=True)
class Context:
    """What the verdict needs to know of the run, for its messages."""

    label: str  # the combination, as in item ids
    timeout: float | None
    maxfail: int


def settle(
    outcome: ChildOutcome,
    given: Sequence[str],
    items: Mapping[str, pytest.Item],
    has_result: Callable[[str], bool],
    context: Context,
) -> list[tuple[str, list, list]]:
    """The reports the child's end adds: (child node id, reports, warnings) per item.

    ``given``: the node ids the child was asked to run; ``items``: the
    parent's items by child node id; ``has_result``: whether an item was
    already handed its reports while the child ran.
    """
    out: list[tuple[str, list, list]] = []
    if outcome.last is not None:
        nodeid, reports, warnings = outcome.last
        out.append((nodeid, list(reports), list(warnings)))
    if outcome.running is not None:
        item = items[outcome.running]
        out.append((outcome.running, [*outcome.partial, _death_report(item, outcome, context)], []))
    settled = {nodeid for nodeid, _, _ in out}
    missing = [n for n in given if n not in settled and not has_result(n) and n in items]
    if outcome.running is None:
        for nodeid in missing:
            out.append((nodeid, [_missing_report(nodeid, items[nodeid], outcome, context)], []))
        problem = _exit_problem(outcome)
        if problem and not missing:
            # every item has its reports: the last one the child ran carries what its end says
            nodeid = outcome.last[0] if outcome.last is not None else given[-1]
            head = f"envmatrix: the child pytest in {context.label} {problem}"
            out.append((nodeid, [error(items[nodeid], _explain(head, outcome), when="teardown")], []))
    for pid, sent in outcome.forked.items():
        nodeid = next((n for n, _, _ in sent if n in items), None) or outcome.running or (outcome.last or (None,))[0]
        if nodeid is None:
            continue
        what = ", ".join(f"{n.rpartition('::')[2]} {when} {result}" for n, result, when in sent[:6])
        message = (
            f"envmatrix: a process forked by this test (pid {pid}) went on running pytest in {context.label} "
            f"and sent results of its own ({what}{', ...' if len(sent) > 6 else ''}); they are not results of "
            "this test and were dropped. A forked process must end with os._exit(), never return into pytest."
        )
        out.append((nodeid, [error(items[nodeid], message, when="teardown")], []))
    return out


def collection_failed(outcome: ChildOutcome, label: str, timeout: float | None) -> str:
    """Why a child that was to collect the suite in ``label`` described nothing."""
    if outcome.foreign:
        head = f"envmatrix: the environment for {label} does not hold its combination: " + "; ".join(outcome.foreign)
    elif outcome.timed_out:
        head = f"envmatrix: the child pytest in {label} did not finish collecting within {timeout:g} s"
    else:
        head = f"envmatrix: the child pytest in {label} ended before it had collected the tests: {outcome.death()}"
    return _explain(head, outcome)


def restart_note(outcome: ChildOutcome, item: pytest.Item, label: str, remaining: int) -> str:
    ended = "timed out" if outcome.timed_out else f"crashed ({outcome.death()})"
    return f"{label}: the child {ended} on {item.nodeid}; restarted it on the {remaining} remaining test(s)"


def _death_report(item: pytest.Item, outcome: ChildOutcome, context: Context) -> pytest.TestReport:
    if outcome.timed_out:
        head = f"envmatrix: timed out after {context.timeout:g} s in {context.label}"
    elif outcome.exitstatus is not None:
        head = (
            f"envmatrix: the child pytest in {context.label} ended its session while running this test "
            f"(exit status {_status_words(outcome.exitstatus)})"
        )
    else:
        head = f"envmatrix: the child pytest in {context.label} crashed while running this test: {outcome.death()}"
    when = {0: "setup", 1: "call"}.get(len(outcome.partial), "teardown")
    return error(item, _explain(head, outcome), when=when)


def _missing_report(nodeid: str, item: pytest.Item, outcome: ChildOutcome, context: Context) -> pytest.TestReport:
    label = context.label
    if outcome.foreign:
        why = (
            f"the environment for {label} does not hold its combination: " + "; ".join(outcome.foreign)
            + " (if something changed the environment, --envmatrix-rebuild rebuilds it)"
        )
        return error(item, why)
    stale = outcome.stale.get(nodeid.split("::", 1)[0])
    if stale is not None:
        return error(item, (
            f"envmatrix: {nodeid.split('::', 1)[0]} no longer collects as the last run recorded it ({stale}); this run "
            f"made its tests from that record, so it did not run them in {label}. The record is dropped: run again"
        ))
    module = nodeid.split("::", 1)[0]
    reason = _skipped_at_collection(outcome, module)
    if reason is not None and not outcome.timed_out:
        return skipped(item, reason)  # the module skipped itself in this combination, as plain pytest shows it
    if outcome.timed_out:
        why = f"timed out after {context.timeout:g} s in {label}, before this test started"
    elif any(_covers(report.nodeid, module) for report in outcome.collect_errors):
        why = f"the child pytest in {label} could not collect this test"
    elif outcome.collected is not None and nodeid not in outcome.collected:
        why = f"the child pytest in {label} did not find this test"
    elif outcome.exitstatus is None:
        why = f"the child pytest in {label} ended before running this test: {outcome.death()}"
    elif outcome.exitstatus == pytest.ExitCode.TESTS_FAILED and outcome.failed and context.maxfail:
        # -x / --maxfail stopped the child, as it would have stopped plain pytest
        return skipped(item, f"envmatrix: not run, the child stopped after {context.maxfail} failure(s) (-x/--maxfail)")
    else:
        why = f"the child pytest in {label} reported no result for this test (exit status {_status_words(outcome.exitstatus)})"
        if outcome.unexpected:
            shown = ", ".join(dict.fromkeys(outcome.unexpected))
            why += f"; it reported node ids it was not asked for: {shown}"
    return error(item, _explain(f"envmatrix: {why}", outcome))


def _exit_problem(outcome: ChildOutcome) -> str | None:
    """Why a child that finished every item it was given still did not end well, or None."""
    if outcome.exitstatus is None:
        if outcome.timed_out:
            return "timed out after its last test, before its session finished"
        return f"ended after its last test without finishing its session: {outcome.death()}"
    if outcome.returncode != outcome.exitstatus:
        return (
            f"finished its session with exit status {_status_words(outcome.exitstatus)}, "
            f"but the process then ended with {outcome.death()}"
        )
    if outcome.exitstatus == pytest.ExitCode.OK:
        return None
    if outcome.exitstatus == pytest.ExitCode.TESTS_FAILED and outcome.failed:
        return None
    return f"ended with {outcome.death()} ({_status_words(outcome.exitstatus)}), although none of its tests failed"


def _status_words(status: int | None) -> str:
    try:
        return f"{status}: {pytest.ExitCode(status).name}"
    except ValueError:
        return str(status)


def _covers(collector: str, module: str) -> bool:
    """Whether a collection report of ``collector`` (the session's, a folder's or the module's own) is about ``module``."""
    return not collector or collector == module or module.startswith(collector.rstrip("/") + "/")


def _skipped_at_collection(outcome: ChildOutcome, module: str) -> str | None:
    """The reason ``module`` (or a folder above it) skipped itself while the child collected it, if it did."""
    for report in outcome.collect_skips:
        if report.nodeid and _covers(report.nodeid, module):
            longrepr = report.longrepr
            reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
            return reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason
    return None


def _explain(head: str, outcome: ChildOutcome) -> str:
    lines = [head]
    for report in outcome.collect_errors:
        lines.append(f"collection error in {report.nodeid or 'the session'}:")
        lines.append(str(report.longrepr))
    # the child printed its collection errors too: once is enough, unless it died after them
    tail = [] if outcome.collect_errors and outcome.exitstatus is not None else outcome.output_tail()
    if tail:
        lines.append("child output (last lines):")
        lines.extend("    " + line for line in tail)
    return "\n".join(lines)


def report(item: pytest.Item, outcome: str, longrepr, when: str) -> pytest.TestReport:
    return pytest.TestReport(
        nodeid=item.nodeid,
        location=item.location,
        keywords={name: 1 for name in item.keywords},
        outcome=outcome,
        longrepr=longrepr,
        when=when,
        sections=[],
        duration=0.0,
        user_properties=[],
    )


def skipped(item: pytest.Item, reason: str) -> pytest.TestReport:
    return report(item, "skipped", (str(item.path), item.location[1] + 1, f"Skipped: {reason}"), "setup")


MISSING_PYTHON_HINT = (
    "Install that interpreter where pytest-envmatrix finds it (on PATH, or with pyenv), "
    "or run without --envmatrix-require-python to skip these tests instead."
)


def error(item: pytest.Item, message: str, when: str = "setup", headline: str | None = None) -> pytest.TestReport:
    """An error report that prints ``message`` and gives ``headline`` (default: its first line) as the crash line."""
    return report(item, "failed", message_repr(item, message, headline), when)


def environment_failed(items: Sequence[pytest.Item], headline: str, details: str) -> list[tuple[pytest.Item, pytest.TestReport]]:
    """An environment that could not be had: the first item tells it in full, the others in one line.

    A missing version would otherwise print the installer's output once per
    item (thousands of times for a whole suite). Every item still gets an
    error naming the environment and the reason, on its short summary line too.
    """
    if not items:
        return []
    first = items[0]
    out = [(first, error(first, f"{headline}\n{details}" if details else headline, headline=headline))]
    pointer = f"{headline} (told in full on {first.nodeid})"
    out.extend((item, error(item, pointer, headline=headline)) for item in items[1:])
    return out


def message_repr(item: pytest.Item, message: str, headline: str | None = None):
    """A longrepr that prints ``message`` as it is and carries a crash line.

    pytest's short summary (``-r``), ``--tb=line`` and ``--junitxml``'s message take
    ``longrepr.reprcrash.message``: pytest 8 shows nothing for a plain string, and
    pytest 9 the whole string. pytest's own chain of one native traceback crosses
    xdist's serialization whole, which an object of our own would not (xdist
    sends it as a string). Without those classes, the message stays a string.
    """
    try:
        from _pytest._code.code import ExceptionChainRepr, ReprFileLocation, ReprTracebackNative
    except ImportError:  # pragma: no cover - a pytest that moved them
        return message
    lines = message.splitlines() or [""]
    crash = ReprFileLocation(str(item.path), (item.location[1] or 0) + 1, headline or lines[0])
    return ExceptionChainRepr([(ReprTracebackNative([line + "\n" for line in lines]), crash, None)])

