"""Dagster sensors and schedules: what triggers the assets."""
