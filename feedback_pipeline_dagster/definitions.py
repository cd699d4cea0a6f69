"""The Dagster code location: everything `assets/` and `sensors/` define, with the storage resources,
and what `feedback-pipeline run` needs of it (`location`, found through the entry point group
`feedback_pipeline.code_location`).

Runs execute their steps in the run's own process (`in_process_executor`): each step is a short
call into `feedback_pipeline`, and a process per step would cost more than the step itself.
"""

import warnings
from functools import partial

import dagster as dg

from feedback_pipeline.code_location import CodeLocation, Stage
from feedback_pipeline_dagster import assets, sensors
from feedback_pipeline_dagster.assets.resources import storage_resources
from feedback_pipeline_dagster.sensors import assessments, datasets, labeling, quality, run_health, traces

with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)
    defs = dg.Definitions.merge(
        dg.load_definitions_from_package_module(assets),
        dg.load_definitions_from_package_module(sensors),
        dg.Definitions(resources=storage_resources(), executor=dg.in_process_executor),
    )

location = CodeLocation(
    defs=defs,
    stages=tuple(
        Stage(module.__name__.rsplit(".", 1)[-1], module.pending_run_requests)
        for module in (traces, labeling, assessments, datasets, quality)
    ),
    process_tags=run_health.process_tags,
    fail_dead_runs=partial(run_health.fail_dead_runs, judge_daemon_runs=False),
    repeated_gate_failure=datasets.repeated_gate_failure,
)
