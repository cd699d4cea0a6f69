"""What `feedback-pipeline run` needs of the Dagster shell, and how it finds it without importing it:
the shell (`feedback_pipeline_dagster.definitions`) registers its `CodeLocation` as the one entry point
of the group `feedback_pipeline.code_location` (pyproject.toml)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dagster

    from feedback_pipeline.lake import Lake
    from feedback_pipeline.landing import LandingZone

CODE_LOCATION_GROUP = "feedback_pipeline.code_location"


@dataclass(frozen=True)
class Stage:
    """A stage of the flow as `run` sees it: its name and its sensor's `pending_run_requests`
    (which maps the stage's function in `feedback_pipeline.pending` to run requests)."""

    name: str
    pending_run_requests: Callable[[Lake, LandingZone, dagster.DagsterInstance], list[dagster.RunRequest]]


@dataclass(frozen=True)
class CodeLocation:
    """What `run` needs of the Dagster shell: its definitions (the jobs), its stages in flow order,
    the tags that name this process on a run, the marking of runs a dead process left STARTED, and
    the earlier run whose publish gate failed on a failed run's inputs (None when there is none)."""

    defs: dagster.Definitions
    stages: tuple[Stage, ...]
    process_tags: Callable[[], dict[str, str]]
    fail_dead_runs: Callable[[dagster.DagsterInstance], list[str]]
    repeated_gate_failure: Callable[[dagster.DagsterInstance, dict[str, str], str], str | None]


def load_code_location() -> CodeLocation:
    """The code location the installed shell registers (entry point group `feedback_pipeline.code_location`)."""
    found = list(entry_points(group=CODE_LOCATION_GROUP))
    if len(found) != 1:
        names = ", ".join(point.value for point in found) or "none"
        raise RuntimeError(
            f"entry point group {CODE_LOCATION_GROUP!r}: expected exactly one code location, found {names} "
            "(reinstall the project: `make install`)"
        )
    return found[0].load()
