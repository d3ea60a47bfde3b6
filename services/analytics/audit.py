"""Analytics' audit events (see :mod:`jinji.audit`): actions ``analytics.*``."""

from jinji.audit import AuditTrail

SOURCE = "analytics"
record = AuditTrail(SOURCE, "analytics").record
