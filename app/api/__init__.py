"""The permission API for SPV's other services (``/api/v1/``): check, list, change feed."""
