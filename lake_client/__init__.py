"""Datapunk Lake: a thin client for a PostgreSQL-native personal data lake."""

from lake_client.errors import LakeError
from lake_client.transport import grpc_tls13_only

grpc_tls13_only()  # before anything imports grpc (lake_client.transport says why)

__all__ = ["LakeError"]
__version__ = "0.1.0"
