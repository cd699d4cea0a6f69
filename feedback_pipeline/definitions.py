"""The Dagster code location: everything `assets/` and `sensors/` define, with the storage resources.

Runs execute their steps in the run's own process (`in_process_executor`): each step is a short
call into `feedback_pipeline`, and a process per step would cost more than the step itself.
"""

import warnings

import dagster as dg

import assets
import sensors
from assets.resources import storage_resources

with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)
    defs = dg.Definitions.merge(
        dg.load_definitions_from_package_module(assets),
        dg.load_definitions_from_package_module(sensors),
        dg.Definitions(resources=storage_resources(), executor=dg.in_process_executor),
    )
