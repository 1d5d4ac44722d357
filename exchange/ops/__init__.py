"""Running a deployment: its logs, its self-check, its backups."""
