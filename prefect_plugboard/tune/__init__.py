"""Tuning: a parameter search over a model (Ray Tune with Optuna), every trial a flow run.

Needs the `tune` extra (`pip install 'prefect-plugboard[tune]'`). Names are imported on
first use: the specs load without Ray or Optuna.
"""

from __future__ import annotations

import typing as _t

from prefect_plugboard._lazy import lazy_exports


if _t.TYPE_CHECKING:
    from prefect_plugboard.exceptions import (
        ConstraintError as ConstraintError,
        StudyError as StudyError,
    )
    from prefect_plugboard.tune.flow import tune as tune
    from prefect_plugboard.tune.results import (
        StudyResults as StudyResults,
        TrialResult as TrialResult,
    )
    from prefect_plugboard.tune.specs import (
        CategoricalParameterSpec as CategoricalParameterSpec,
        Direction as Direction,
        FloatParameterSpec as FloatParameterSpec,
        IntParameterSpec as IntParameterSpec,
        ObjectiveSpec as ObjectiveSpec,
        OptunaSpec as OptunaSpec,
        ParameterSpec as ParameterSpec,
        TuneArgsDict as TuneArgsDict,
        TuneArgsSpec as TuneArgsSpec,
        TuneSpec as TuneSpec,
    )
    from prefect_plugboard.tune.tuner import Tuner as Tuner

_SPECS = "prefect_plugboard.tune.specs"
_PUBLIC: dict[str, str] = {
    "CategoricalParameterSpec": _SPECS,
    "ConstraintError": "prefect_plugboard.exceptions",
    "Direction": _SPECS,
    "FloatParameterSpec": _SPECS,
    "IntParameterSpec": _SPECS,
    "ObjectiveSpec": _SPECS,
    "OptunaSpec": _SPECS,
    "ParameterSpec": _SPECS,
    "StudyError": "prefect_plugboard.exceptions",
    "StudyResults": "prefect_plugboard.tune.results",
    "TrialResult": "prefect_plugboard.tune.results",
    "TuneArgsDict": _SPECS,
    "TuneArgsSpec": _SPECS,
    "TuneSpec": _SPECS,
    "Tuner": "prefect_plugboard.tune.tuner",
    "tune": "prefect_plugboard.tune.flow",
}

__all__ = [
    "CategoricalParameterSpec",
    "ConstraintError",
    "Direction",
    "FloatParameterSpec",
    "IntParameterSpec",
    "ObjectiveSpec",
    "OptunaSpec",
    "ParameterSpec",
    "StudyError",
    "StudyResults",
    "TrialResult",
    "TuneArgsDict",
    "TuneArgsSpec",
    "TuneSpec",
    "Tuner",
    "tune",
]


__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
