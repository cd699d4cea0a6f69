"""The Dagster code location: everything `assets/` and `sensors/` define, with the storage resources."""

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
        dg.Definitions(resources=storage_resources()),
    )
