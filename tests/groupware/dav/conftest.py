"""Real DAV servers for the DAV backend's tests."""

from tests.servers import dav_server

__all__ = ["dav_server"]
