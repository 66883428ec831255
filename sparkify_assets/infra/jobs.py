"""Dagster jobs that provision and tear down the Redshift warehouse."""

INFRA_JOBS: list = []
INFRA_RESOURCES: dict = {}
