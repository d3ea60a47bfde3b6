"""Ingestion's domain metrics (labels: dataset kind and reason codes only)."""

from prometheus_client import Counter, Histogram

ROWS = Counter("jinji_ingestion_rows_total", "Rows committed, by dataset kind.", ["kind"])
BYTES = Counter("jinji_ingestion_bytes_total", "Bytes of accepted files, by kind.", ["kind"])
REJECTED = Counter(
    "jinji_ingestion_rejected_uploads_total", "Rejected uploads, by reason code.", ["reason"]
)
DURATION = Histogram(
    "jinji_ingestion_upload_seconds",
    "Upload handling time, from the end of the request body to the answer.",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
