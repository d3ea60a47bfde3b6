"""Tenant-admin's audit events (see :mod:`jinji.audit`): actions ``tenants.*``."""

from jinji.audit import AuditTrail

SOURCE = "tenant_admin"
record = AuditTrail(SOURCE, "tenants").record
