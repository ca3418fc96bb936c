"""The admin console and REST API (`crmsync serve`)."""

from crmsync.admin.web.app import create_app

__all__ = ["create_app"]
