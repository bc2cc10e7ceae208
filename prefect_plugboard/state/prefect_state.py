"""`PrefectStateBackend`: a run's process and component statuses, read from the Prefect API."""

from __future__ import annotations

from dataclasses import dataclass
import typing as _t
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    TaskRunFilter,
    TaskRunFilterTags,
)
from prefect.client.schemas.objects import StateType
from prefect.exceptions import ObjectNotFound

from prefect_plugboard.exceptions import ProcessStateError
from prefect_plugboard.process.tasks import PLUGBOARD_TAG
from prefect_plugboard.schemas.status import Status


if _t.TYPE_CHECKING:
    from prefect_plugboard.process.process import Process


__all__ = ["ComponentState", "PrefectStateBackend", "ProcessState", "StateBackend", "status_of"]

_STATUS: dict[StateType, Status] = {
    StateType.SCHEDULED: Status.CREATED,
    StateType.PENDING: Status.INIT,
    StateType.RUNNING: Status.RUNNING,
    StateType.PAUSED: Status.WAITING,
    StateType.COMPLETED: Status.COMPLETED,
    StateType.FAILED: Status.FAILED,
    StateType.CRASHED: Status.FAILED,
    StateType.CANCELLING: Status.STOPPED,
    StateType.CANCELLED: Status.STOPPED,
}


def status_of(state_type: StateType | None) -> Status:
    """The plugboard status of a Prefect state type.

    `Cancelled` is `stopped`, `Crashed` is `failed`; `Running` covers plugboard's `running`
    and `waiting`.
    """
    return _STATUS.get(state_type, Status.CREATED) if state_type is not None else Status.CREATED


@dataclass(frozen=True)
class ComponentState:
    """One component of a run, as its task run tells.

    Attributes:
        name: The component's name (its task run's name).
        status: Its status.
        state_name: The task run's Prefect state, e.g. `Cancelled`.
        message: The state's message, e.g. the error a failed component raised.
        task_run_id: The task run's id.
    """

    name: str
    status: Status
    state_name: str
    message: str | None
    task_run_id: UUID

    def dict(self) -> dict[str, _t.Any]:
        """Returns the state as plain data, keyed as plugboard's component records."""
        return {
            "id": self.name,
            "name": self.name,
            "status": str(self.status),
            "state_name": self.state_name,
            "message": self.message,
            "task_run_id": str(self.task_run_id),
        }


class PrefectStateBackend:
    """Reads where a run stands from the Prefect API, from any Python process.

    plugboard's state backends keep a run's state under a job id; here the job id is the id
    of the run's flow run (`process.flow_run_id`, printed by Prefect and shown in its UI).

    Example:
        ```python
        state = PrefectStateBackend(job_id="0b9c...")  # the flow run's id
        print(await state.get_process_status())  # Status.RUNNING
        print(await state.get_component("save"))  # {"status": "completed", ...}
        ```

    Args:
        job_id: The id of the run's flow run.
    """

    def __init__(self, job_id: str | UUID | None = None) -> None:
        self._job_id = str(job_id) if job_id is not None else None

    @property
    def job_id(self) -> str | None:
        """The run's job id: the id of its flow run (`None` before the run starts)."""
        return self._job_id

    def _flow_run_id(self) -> UUID:
        job_id = self.job_id
        if job_id is None:
            msg = "no job id yet: the process has not started a run (call `run()` first)"
            raise ProcessStateError(msg)
        try:
            return UUID(job_id)
        except ValueError:
            msg = f"job id {job_id!r} is not a flow run id (a UUID)"
            raise ProcessStateError(msg) from None

    async def get_process_status(self, process_id: str | None = None) -> Status:
        """The process's status: its flow run's state.

        Args:
            process_id: Accepted for plugboard's signature; a job has one process.

        Raises:
            ProcessStateError: There is no run yet, or no flow run with this id.
        """
        flow_run_id = self._flow_run_id()
        async with get_client() as client:
            try:
                run = await client.read_flow_run(flow_run_id)
            except ObjectNotFound:
                msg = f"no flow run {flow_run_id} on the Prefect API {client.api_url}"
                raise ProcessStateError(msg) from None
        return status_of(run.state.type if run.state is not None else None)

    async def get_components(self) -> dict[str, ComponentState]:
        """Every component of the run that has started, by name: its task run's state."""
        flow_run_id = self._flow_run_id()
        async with get_client() as client:
            runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                task_run_filter=TaskRunFilter(tags=TaskRunFilterTags(all_=[PLUGBOARD_TAG])),
            )
        found = {}
        for run in runs:
            state = run.state
            found[run.name] = ComponentState(
                name=run.name,
                status=status_of(state.type if state is not None else None),
                state_name=(state.name or state.type.value) if state is not None else "Unknown",
                message=state.message if state is not None else None,
                task_run_id=run.id,
            )
        return found

    async def get_component(self, component_id: str) -> dict[str, _t.Any]:
        """One component's record: `id`, `name`, `status`, and its task run's state.

        Raises:
            ProcessStateError: The run has no component of that name (yet).
        """
        components = await self.get_components()
        if component_id not in components:
            known = ", ".join(sorted(components)) or "none yet"
            msg = f"run {self.job_id} has no component {component_id!r}; its components: {known}"
            raise ProcessStateError(msg)
        return components[component_id].dict()

    async def get_process(self, process_id: str | None = None) -> dict[str, _t.Any]:
        """The process's record: `job_id`, `status`, and each component's record."""
        status = await self.get_process_status(process_id)
        components = await self.get_components()
        return {
            "job_id": self.job_id,
            "status": str(status),
            "components": {name: c.dict() for name, c in components.items()},
        }

    async def get_process_for_component(self, component_id: str) -> dict[str, _t.Any]:
        """The record of the process a component belongs to (this run's)."""
        await self.get_component(component_id)
        return await self.get_process()

    async def get_process_status_for_component(self, component_id: str) -> Status:
        """The status of the process a component belongs to (this run's)."""
        await self.get_component(component_id)
        return await self.get_process_status()


StateBackend = PrefectStateBackend
"""plugboard's name for a state backend; here there is one, Prefect's API."""


class ProcessState(PrefectStateBackend):
    """`process.state`: the state of a process's latest run, read from the Prefect API.

    Args:
        process: The process; its `flow_run_id` is the job id.
    """

    def __init__(self, process: Process) -> None:
        super().__init__()
        self._process = process

    @property
    def job_id(self) -> str | None:
        """The id of the flow run of the process's latest `run()` (`None` before one)."""
        flow_run_id = self._process.flow_run_id
        return str(flow_run_id) if flow_run_id is not None else None
