"""Exceptions raised by prefect-plugboard.

Every exception the library raises on purpose derives from one root, so callers can catch
`PlugboardError` to handle them all. Where a built-in exception fits the meaning, the class
derives from it too (a `ValidationError` is a `ValueError`).

```text
PlugboardError
├── ValidationError (ValueError)        the graph or its configuration is invalid; `.issues`
│   └── ResourceError                   the Ray cluster cannot give the graph what it asks for
├── IOSetupError (TypeError)            a component class declares no fields and no events
├── StepResultError (ValueError, TypeError) a `@component` function returned no dict
├── ComponentError                      a component raised; `.component`; the cause is kept
│   └── ComponentCrashedError           the worker running a component died
├── ConstraintError                     a component found a constraint violated; `.objective_value`
├── StudyError                          a study ended without a completed trial; `.results`
├── ProcessStateError (RuntimeError)    a process method was called in the wrong state
│   └── NotInitialisedError             `step()` before `init()`
├── IOStreamClosedError                 a component's stream has ended (e.g. a reader's)
├── RayConnectionError (ConnectionError) the Ray cluster to join is unreachable or refused us
├── ChannelError                        a channel could not carry a message
│   └── ChannelClosedError              a channel was used after it was closed
├── DataIOError (OSError)               a library reader/writer cannot use its file, table or server
└── NoMoreDataException                 a `DataReader._fetch` has no more data (ends the reader)
```
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


__all__ = [
    "ChannelClosedError",
    "ChannelError",
    "ComponentCrashedError",
    "ComponentError",
    "ConstraintError",
    "DataIOError",
    "IOSetupError",
    "IOStreamClosedError",
    "Issue",
    "NoMoreDataException",
    "NotInitialisedError",
    "PlugboardError",
    "ProcessStateError",
    "RayConnectionError",
    "ResourceError",
    "StepResultError",
    "StudyError",
    "ValidationError",
]


class PlugboardError(Exception):
    """Root of every exception prefect-plugboard raises on purpose."""


@dataclass(frozen=True)
class Issue:
    """One problem found while validating a process or its configuration.

    Attributes:
        message: What is wrong and, where it helps, what to do about it.
        location: Where the problem is, e.g. `components[2].args.name` or `connectors[0]`.
        source: The file (and line) the location refers to, when the graph came from a file.
    """

    message: str
    location: str = ""
    source: str = ""

    def __str__(self) -> str:
        where = self.location
        if self.source:
            where = f"{where} ({self.source})" if where else self.source
        return f"{where}: {self.message}" if where else self.message


class ValidationError(PlugboardError, ValueError):
    """The process, its components or its configuration are invalid.

    Raised before anything starts, with every problem found, not just the first.

    Attributes:
        issues: The problems found, each with its location.
    """

    def __init__(self, issues: Iterable[Issue | str], *, subject: str = "process") -> None:
        self.issues: list[Issue] = [i if isinstance(i, Issue) else Issue(i) for i in issues]
        self.subject = subject
        count = len(self.issues)
        noun = "problem" if count == 1 else "problems"
        lines = "\n".join(f"  - {issue}" for issue in self.issues)
        super().__init__(f"{count} {noun} in {subject}:\n{lines}")


class ResourceError(ValidationError):
    """The graph asks for resources the Ray cluster cannot give it."""


class ComponentError(PlugboardError):
    """A component raised an exception while running.

    The component's own exception is the `__cause__`, so `except` clauses and tracebacks see it.

    Attributes:
        component: The name of the component that failed.
        component_type: The component's class name.
    """

    def __init__(self, component: str, component_type: str, message: str) -> None:
        self.component = component
        self.component_type = component_type
        super().__init__(message)


class ComponentCrashedError(ComponentError):
    """The worker running a component died (killed, out of memory, node lost)."""


class ConstraintError(PlugboardError):
    """A component found one of the model's constraints violated; the run ends with it.

    Raise it from a component (`raise ConstraintError("pressure above 5 bar")`): every other
    component stops, and `run()` raises this error, with the component named, instead of a
    `ComponentError`. A tuner scores the trial with `objective_value` (or the worst value).

    Args:
        *args: The message: which constraint, and by how much.
        objective_value: The objective to report for this run instead of the worst value.

    Attributes:
        objective_value: As given.
        component: The name of the component that raised it (set when the run ends).
    """

    def __init__(self, *args: object, objective_value: float | None = None) -> None:
        super().__init__(*args)
        self.objective_value = objective_value
        self.component: str | None = None


class IOSetupError(PlugboardError, TypeError):
    """A concrete component class declares no input or output fields and no events."""


class StepResultError(PlugboardError, ValueError, TypeError):
    """A function decorated with `@component` returned something other than a dict.

    A `ValueError`, as plugboard raises, and a `TypeError`, as the wrong type it is.
    """


class IOStreamClosedError(PlugboardError):
    """A component's stream has ended (plugboard's name).

    A component driven by hand (`await component.step()`) has no more input to step on: its
    input channel ended, or the component closed its own output; `component.run()` ends when
    it sees this error. A `step()` that raises it ends the component as `io.close()` does
    (e.g. a `DataReader` stepped past its last row).
    """


class StudyError(PlugboardError):
    """A study of a model ended without a completed trial (each failed, or it was cancelled).

    Attributes:
        results: The study's trials (`prefect_plugboard.tune.StudyResults`), with their errors.
    """

    def __init__(self, message: str, results: object = None) -> None:
        super().__init__(message)
        self.results = results


class ProcessStateError(PlugboardError, RuntimeError):
    """A process method was called when the process was in the wrong state."""


class NotInitialisedError(ProcessStateError):
    """`process.step()` was called before `process.init()`."""


class ChannelError(PlugboardError):
    """A channel could not carry a message (e.g. it could not be pickled to cross workers)."""


class ChannelClosedError(ChannelError):
    """A message was sent on a channel after its sender closed it."""


class DataIOError(PlugboardError, OSError):
    """A library reader or writer cannot use its data.

    A missing file, a table without the columns it needs, a database or server it cannot
    reach, values that do not fit the file.

    The message names the component and the path or URL (with any password hidden).
    """


class NoMoreDataException(PlugboardError):
    """Raised by a `DataReader._fetch()` when its source has no more data."""


class RayConnectionError(PlugboardError, ConnectionError):
    """The Ray cluster to join could not be reached or refused the connection."""

    def __init__(self, address: str, cause: BaseException) -> None:
        self.address = address
        message = f"could not join the Ray cluster at {address!r}: {_first_line(cause)}"
        if "uthentication" in "".join(_messages(cause)):
            message += (
                ". The cluster uses token authentication: set RAY_AUTH_MODE=token where this "
                "process runs (the token is read from ~/.ray/auth_token or RAY_AUTH_TOKEN)"
            )
        super().__init__(message)


def _messages(exc: BaseException | None) -> Iterator[str]:
    while exc is not None:
        yield str(exc)
        exc = exc.__cause__ or exc.__context__


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
