"""The names the seed tutorial imports, and rules about the package's own source."""

import importlib
from pathlib import Path
import re
import subprocess
import sys

import pytest

import prefect_plugboard
from tests.helpers import SEED


SEED_NAMES = {
    "prefect_plugboard.component": ["Component", "IOController", "IO", "ComponentArgsDict"],
    "prefect_plugboard.connector": [
        "AsyncioConnector",
        "ConnectorBuilder",
        "ConnectorSpec",
        "RayConnector",
    ],
    "prefect_plugboard.process": ["LocalProcess", "Process", "RayProcess", "ResourceError"],
    "prefect_plugboard.schemas": ["ComponentArgsDict", "ConnectorSpec", "Resource", "Status"],
    "prefect_plugboard.library": ["FileWriter", "FileReader"],
    "prefect_plugboard.library.file_io": ["FileWriter", "FileReader"],
}
TUNE_NAMES = {  # plugboard's tutorial on tuning imports these
    "prefect_plugboard.schemas": ["FloatParameterSpec", "ObjectiveSpec"],
    "prefect_plugboard.tune": ["Tuner"],
    "prefect_plugboard.exceptions": ["ConstraintError"],
}


@pytest.mark.parametrize("module", sorted(SEED_NAMES))
def test_seed_names_import_from_the_plugboard_style_modules(module: str) -> None:
    imported = importlib.import_module(module)
    for name in SEED_NAMES[module]:
        assert getattr(imported, name) is getattr(prefect_plugboard, name), name


@pytest.mark.slow  # a fresh interpreter
def test_a_model_module_brings_no_prefect_to_the_ray_worker_that_imports_it() -> None:
    """A Ray worker imports the module of a component pickled by reference (one from an
    installed package). The seed's module imports `LocalProcess` and `RayProcess` for its
    `__main__`: importing it must not import Prefect, which stays on the driver."""
    code = (
        "import sys, hello_ray; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'prefect'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=SEED.parent,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("module", sorted(TUNE_NAMES))
def test_the_tuning_tutorials_names_import_from_the_plugboard_style_modules(module: str) -> None:
    imported = importlib.import_module(module)
    for name in TUNE_NAMES[module]:
        assert getattr(imported, name) is getattr(
            importlib.import_module("prefect_plugboard.tune"), name
        )


def test_lazy_exports_match_their_lists() -> None:
    process = importlib.import_module("prefect_plugboard.process")
    library = importlib.import_module("prefect_plugboard.library")
    tune = importlib.import_module("prefect_plugboard.tune")
    for module in (prefect_plugboard, process, library, tune):
        public = set(module._PUBLIC)
        assert public == set(module.__all__) - {"__version__"}
        for name in public:
            assert name in dir(module)
    schemas = importlib.import_module("prefect_plugboard.schemas")
    assert set(schemas._PUBLIC) <= set(schemas.__all__)


def test_every_public_name_is_exported_from_the_package() -> None:
    for name in prefect_plugboard.__all__:
        assert hasattr(prefect_plugboard, name), name
    for module in SEED_NAMES:
        imported = importlib.import_module(module)
        assert sorted(imported.__all__) == sorted(set(imported.__all__))
        for name in imported.__all__:
            assert hasattr(imported, name), f"{module}.{name}"


FIXED_SLEEP = re.compile(
    r"time\.sleep\(|(asyncio|anyio)\.sleep\((?!0\))(?!CANCEL_POLL_INTERVAL\))(?!REDRAW_INTERVAL\))"
    r"(?!_retry_pause\()"
    r"(?!busy_backoff\))"
)
# The timed waits allowed: reading a flow run's state as a fallback to hearing its
# Cancelling event (another process's temporary API server emits no events we can hear); a
# stream sender's growing pause before it tries again a handshake its receiver turned away
# (too many strangers' connections were waiting: nothing to wait on but time); and the
# pause before asking again a Prefect API whose database was busy (it answered 503).


def test_no_fixed_sleeps_in_the_package() -> None:
    package = Path(prefect_plugboard.__file__).parent
    offenders = [
        f"{path.relative_to(package)}:{number}: {line.strip()}"
        for path in sorted(package.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if FIXED_SLEEP.search(line)
    ]
    assert offenders == []


def test_the_entry_point_lets_prefect_find_the_block_types() -> None:
    from importlib.metadata import entry_points

    found = {ep.name: ep for ep in entry_points(group="prefect.collections")}
    assert found["prefect_plugboard"].value == "prefect_plugboard.blocks"
    blocks = found["prefect_plugboard"].load()
    slugs = {cls.get_block_type_slug() for cls in blocks.channel_block_types().values()}
    assert slugs == {"plugboard-asyncio-channel", "plugboard-ray-channel"}


def test_the_makefile_runs_scripts_that_exist() -> None:
    root = Path(prefect_plugboard.__file__).parents[1]
    scripts = re.findall(r"\.\./(examples/\S+\.py)", (root / "Makefile").read_text())
    assert scripts
    for script in scripts:
        assert (root / script).is_file(), script
