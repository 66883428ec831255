"""Sensors that follow the lake (issue: sensors on new S3 data). Filled in by that work."""

SENSORS: list = []
