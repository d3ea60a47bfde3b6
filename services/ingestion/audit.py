"""Ingestion's audit events (see :mod:`jinji.audit`): actions ``ingestion.*``."""

from jinji.audit import AuditTrail

SOURCE = "ingestion"
record = AuditTrail(SOURCE, "ingestion").record
