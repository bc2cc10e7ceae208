"""Where a run stands, read from Prefect: plugboard's state backends, on Prefect's API.

plugboard keeps a run's state in a state backend (in memory, SQLite, Postgres, a Ray actor)
under a job id. Here Prefect's API is the state: the job id is the id of the run's flow run,
the process's status is its flow run's, and each component's status is its task run's, so any
other Python process that can reach the API reads them (`PrefectStateBackend(job_id)`).
"""

from prefect_plugboard.state.prefect_state import (
    ComponentState,
    PrefectStateBackend,
    ProcessState,
    StateBackend,
    status_of,
)


__all__ = ["ComponentState", "PrefectStateBackend", "ProcessState", "StateBackend", "status_of"]
