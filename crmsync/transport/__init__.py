"""What every backend's HTTP client shares, below the backends.

The CRM backends (``crm``) and the groupware backends (``groupware``) may not import each
other, so code both need lives here: this layer imports only ``crmsync.domain`` (for the
error types a sync understands) and is imported by the backends and the layers above.
"""
