"""Drives OpenTelemetry's real Python SDK and its OTLP/HTTP log exporter (protobuf, gzip) against
Logbook, configured as the README says (OTEL_EXPORTER_OTLP_ENDPOINT = Logbook's URL,
OTEL_EXPORTER_OTLP_HEADERS carrying the key). The Rust test (producers/otlp.rs) reads what Logbook
stored and what it answered."""

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry._logs import SeverityNumber

provider = LoggerProvider(resource=Resource.create({"service.name": "billing", "logbook.account": "acme"}))
provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(compression=Compression.Gzip)))
logger = provider.get_logger("audit", "1.0")

# First batch: one record. The test's proxy stores it, then answers 503; the exporter retries the
# same bytes, and Logbook's key for the record (a digest of it) stores it once.
logger.emit(
    timestamp=1717233120123456789,
    severity_number=SeverityNumber.INFO,
    severity_text="INFO",
    event_name="server.reboot",
    body="Alice rebooted web-1",
    attributes={
        "user.id": "alice@acme.com",
        "user.name": "Alice",
        "client.address": "203.0.113.9",
        "user_agent.original": "curl/8.5.0",
        "logbook.outcome": "success",
        "logbook.target.type": "server",
        "logbook.target.id": "web-1",
        "logbook.target.name": "Web 1",
        "http.route": "/servers/{id}/reboot",
        "retry.count": 2,
    },
)
provider.force_flush()

# Second batch: one valid record and two that lack what an event needs.
logger.emit(
    timestamp=1717233180000000000,
    event_name="server.delete",
    body="Alice deleted web-2",
    attributes={"enduser.id": "alice@acme.com", "logbook.outcome": "failure"},
)
logger.emit(timestamp=1717233181000000000, body="no event name: must not be stored", attributes={"user.id": "x"})
logger.emit(
    timestamp=1717233182000000000,
    event_name="user.login",
    body="bad address: must not be stored",
    attributes={"user.id": "x", "client.address": "not-an-ip"},
)
provider.force_flush()
provider.shutdown()
