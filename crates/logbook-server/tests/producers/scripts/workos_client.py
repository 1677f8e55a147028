"""Drives the real, unmodified `workos` Python SDK against Logbook, configured as the README says
(WORKOS_BASE_URL = Logbook's URL, WORKOS_API_KEY = a Logbook ingest key), and prints one JSON line
per step for the Rust test (producers/workos.rs) to check against what Logbook stored."""

import json
import os
from datetime import datetime, timezone

from workos import WorkOSClient
from workos.audit_logs.models import (
    AuditLogEvent,
    AuditLogEventActor,
    AuditLogEventContext,
    AuditLogEventTarget,
)


def step(name, action):
    try:
        value = action()
        print(json.dumps({"step": name, "ok": True, "value": getattr(value, "success", value)}), flush=True)
    except Exception as error:  # the SDK's own error classes, reported as they are
        print(
            json.dumps(
                {
                    "step": name,
                    "ok": False,
                    "error_class": type(error).__name__,
                    "status": getattr(error, "status_code", None),
                    "code": getattr(error, "code", None),
                    "message": getattr(error, "message", str(error)),
                    "errors": getattr(error, "errors", None),
                }
            ),
            flush=True,
        )


client = WorkOSClient()  # WORKOS_API_KEY and WORKOS_BASE_URL from the environment
acme_only_client = WorkOSClient(api_key=os.environ["WORKOS_ACME_API_KEY"])

signed_in = AuditLogEvent(
    action="user.signed_in",
    occurred_at=datetime(2024, 6, 1, 9, 12, 0, 336000, tzinfo=timezone.utc),
    version=2,
    actor=AuditLogEventActor(id="user_01GBNJC3MX9ZZJW1FSTF4C5938", type="user", name="Jon Smith", metadata={"role": "admin"}),
    targets=[
        AuditLogEventTarget(id="team_01GBNJD4MKHVKJGEWK42JNMBGS", type="team", name="Core"),
        AuditLogEventTarget(id="doc_9", type="document", metadata={"pages": 3}),
    ],
    context=AuditLogEventContext(location="203.0.113.9", user_agent="Chrome/104.0.0.0"),
    metadata={"plan": "pro", "seats": 4, "trial": False},
)
step(
    "create",
    lambda: client.audit_logs.create_event(
        organization_id="org_01EHWNCE74X7JSDV0X3SZ3KJNY", event=signed_in, idempotency_key="idem-create-1"
    ),
)

# The test's proxy stores the first attempt of this one, then answers 503; the SDK retries on its
# own with the same Idempotency-Key it generated.
retried = AuditLogEvent(
    action="team.member_invited",
    occurred_at=datetime(2024, 6, 1, 10, 0, 0, tzinfo=timezone.utc),
    actor=AuditLogEventActor(id="svc-provisioner", type="service"),
    targets=[AuditLogEventTarget(id="team_01GBNJD4MKHVKJGEWK42JNMBGS", type="team")],
    context=AuditLogEventContext(location="Paris, FR"),
    metadata={"marker": "workos-retry"},
)
step("retried", lambda: client.audit_logs.create_event(organization_id="acme", event=retried))
# The application sends the first event again with its key: still one event.
step(
    "replayed",
    lambda: client.audit_logs.create_event(
        organization_id="org_01EHWNCE74X7JSDV0X3SZ3KJNY", event=signed_in, idempotency_key="idem-create-1"
    ),
)

bad_action = AuditLogEvent(
    action="User Signed In",
    occurred_at=datetime(2024, 6, 1, 9, 12, tzinfo=timezone.utc),
    actor=AuditLogEventActor(id="user_1", type="user"),
    targets=[],
    context=AuditLogEventContext(location="203.0.113.9"),
)
step("invalid_action", lambda: client.audit_logs.create_event(organization_id="acme", event=bad_action))
step(
    "foreign_organization",
    lambda: acme_only_client.audit_logs.create_event(organization_id="globex", event=retried),
)
