"""Datapunk Lake: a thin client for a PostgreSQL-native personal data lake."""

from lake_client.errors import LakeError

__all__ = ["LakeError"]
__version__ = "0.1.0"
