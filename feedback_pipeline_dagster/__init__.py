"""The Dagster shell around `feedback_pipeline`: the assets (folder `assets/`), the sensors (folder
`sensors/`) and the code location that assembles them (`feedback_pipeline_dagster.definitions`).
Installed under this project-owned name so no other project's `assets` or `sensors` collides."""
