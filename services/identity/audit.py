"""Identity's audit events (see :mod:`jinji.audit`): actions ``identity.*``."""

from jinji.audit import AuditTrail

SOURCE = "identity"
record = AuditTrail(SOURCE, "identity").record
