// Drives the real, unmodified @retracedhq/retraced client against Logbook, configured as the
// README says (endpoint = Logbook's URL, apiKey = a Logbook ingest key), and prints one JSON line
// per step for the Rust test (producers/retraced.rs) to check against what Logbook stored.
"use strict";
const { Client } = require("@retracedhq/retraced");

const platformClient = new Client({
  endpoint: process.env.RETRACED_ENDPOINT,
  apiKey: process.env.RETRACED_API_KEY,
  projectId: process.env.RETRACED_PROJECT_ID,
  component: "billing-api",
  version: "v1.2.3",
});
const acmeOnlyClient = new Client({
  endpoint: process.env.RETRACED_ENDPOINT,
  apiKey: process.env.RETRACED_ACME_API_KEY,
  projectId: process.env.RETRACED_PROJECT_ID,
});

async function step(name, action) {
  try {
    const value = await action();
    console.log(JSON.stringify({ step: name, ok: true, value }));
  } catch (error) {
    console.log(JSON.stringify({ step: name, ok: false, error: String(error.message) }));
  }
}

const retriedEvent = {
  action: "invoice.send",
  crud: "c",
  group: { id: "acme" },
  actor: { id: "billing-bot" },
  description: "Sent invoice INV-7 (retried)",
  external_id: "ext-retry-1",
};

async function main() {
  await step("single", () =>
    platformClient.reportEvent({
      action: "document.update",
      crud: "u",
      group: { id: "acme", name: "Acme Inc" },
      created: new Date("2024-06-01T09:12:00.000Z"),
      actor: { id: "alice@acme.com", name: "Alice", href: "https://app.example/alice", fields: { role: "admin" } },
      target: { id: "doc-1", name: "Q3 plan", href: "https://app.example/doc-1", type: "document", fields: { folder: "finance" } },
      source_ip: "203.0.113.9",
      description: "Alice updated Q3 plan",
      is_failure: false,
      fields: { reason: "typo fix", "a:b=c;d%": "x:y=z;w%" },
      external_id: "ext-single-1",
      metadata: { ticket: "T-42" },
    }),
  );
  await step("bulk", () =>
    platformClient.reportEvents([
      {
        action: "user.login",
        crud: "c",
        group: { id: "acme" },
        actor: { id: "bob@acme.com", name: "Bob" },
        source_ip: "198.51.100.7",
        description: "Bob failed to log in",
        is_failure: true,
      },
      {
        action: "report.view",
        crud: "r",
        group: { id: "globex" },
        is_anonymous: true,
        description: "Someone viewed the <b>report</b> \u202Egnp.exe",
      },
    ]),
  );
  // The test's proxy stores this first attempt, then answers 503 as a lost answer would look;
  // the application retries the same event, as Retraced's client leaves retries to it.
  await step("retry_first", () => platformClient.reportEvent(retriedEvent));
  await step("retry_second", () => platformClient.reportEvent(retriedEvent));
  await step("invalid_ip", () =>
    platformClient.reportEvent({
      action: "user.login",
      crud: "c",
      group: { id: "acme" },
      actor: { id: "eve" },
      source_ip: "999.1.1.1",
      description: "Must not be stored: bad address",
    }),
  );
  await step("invalid_bulk", () =>
    platformClient.reportEvents([
      { action: "user.logout", crud: "d", group: { id: "acme" }, actor: { id: "eve" }, description: "Must not be stored: valid but in a refused bulk" },
      { action: "user.logout", crud: "x", group: { id: "acme" }, actor: { id: "eve" }, description: "Must not be stored: bad crud" },
    ]),
  );
  await step("foreign_account", () =>
    acmeOnlyClient.reportEvent({
      action: "user.login",
      crud: "c",
      group: { id: "globex" },
      actor: { id: "mallory" },
      description: "Must not be stored: another account",
    }),
  );
}

main();
