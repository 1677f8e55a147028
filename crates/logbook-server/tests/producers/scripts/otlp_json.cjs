// Drives OpenTelemetry's real JavaScript SDK and its OTLP/HTTP log exporter, which sends OTLP's
// JSON encoding, against Logbook, configured through the environment as the README says
// (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS). The Rust test (producers/otlp.rs)
// reads what Logbook stored and what it answered.
"use strict";
const { LoggerProvider, SimpleLogRecordProcessor } = require("@opentelemetry/sdk-logs");
const { OTLPLogExporter } = require("@opentelemetry/exporter-logs-otlp-http");
const { resourceFromAttributes } = require("@opentelemetry/resources");

async function main() {
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ "service.name": "console" }),
    processors: [new SimpleLogRecordProcessor({ exporter: new OTLPLogExporter() })],
  });
  const logger = provider.getLogger("audit", "2.0");
  logger.emit({
    timestamp: new Date("2024-06-01T09:15:00.000Z"),
    eventName: "firewall.rule.update",
    body: "Bob opened port 22 on fw-1",
    attributes: {
      "user.id": "bob@globex.com",
      "client.address": "2001:db8::7",
      "logbook.target.type": "firewall",
      "logbook.target.id": "fw-1",
      "logbook.idempotency_key": "fw-change-1",
      "rule.port": 22,
    },
  });
  logger.emit({ timestamp: new Date("2024-06-01T09:16:00.000Z"), eventName: "firewall.rule.update", body: { structured: true } });
  await provider.forceFlush();
  await provider.shutdown();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
