"""Dynamic partitions added by several processes at once (`feedback-pipeline run`, sensors, hosts)."""

from __future__ import annotations

import dagster as dg
from sqlalchemy.exc import IntegrityError


def add_partitions(instance: dg.DagsterInstance, partitions_def_name: str, keys: list[str]) -> list[str]:
    """Add the keys not yet partitions of `partitions_def_name`; a key another process adds at the
    same moment counts as added. Returns the keys that were missing."""
    missing = [key for key in keys if not instance.has_dynamic_partition(partitions_def_name, key)]
    if not missing:
        return missing
    try:
        instance.add_dynamic_partitions(partitions_def_name, missing)
    except IntegrityError:
        for key in missing:
            if not instance.has_dynamic_partition(partitions_def_name, key):
                instance.add_dynamic_partitions(partitions_def_name, [key])
    return missing
