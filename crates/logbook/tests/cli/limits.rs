//! `logbook limits set|show|clear` for the stored-volume quotas: off by default, stored and shown
//! with where they come from, cleared field by field, and bad values refused.

use super::*;

fn shown_limits(workspace: &Workspace) -> Value {
    let output =
        succeed(&mut workspace.on_data(&["limits", "show", "--account", "acme", "--json"]));
    serde_json::from_str(&stdout_of(&output)).expect("limits show --json prints JSON")
}

#[test]
fn volume_quotas_are_off_until_set_and_cleared_field_by_field() {
    let workspace = Workspace::new();
    workspace.create_account("acme");

    let limits = shown_limits(&workspace);
    assert_eq!(limits["limits"]["events_per_day"]["value"], Value::Null);
    assert_eq!(limits["limits"]["stored_bytes"]["value"], Value::Null);
    assert_eq!(
        limits["limits"]["events_per_day"]["source"],
        "off (quota not set)"
    );

    succeed(&mut workspace.on_data(&[
        "limits",
        "set",
        "--account",
        "acme",
        "--events-per-day",
        "50000",
        "--stored-bytes",
        "1073741824",
    ]));
    let limits = shown_limits(&workspace);
    assert_eq!(limits["limits"]["events_per_day"]["value"], 50_000);
    assert_eq!(limits["limits"]["stored_bytes"]["value"], 1_073_741_824_u64);
    assert_eq!(
        limits["limits"]["stored_bytes"]["source"],
        "database (logbook limits set)"
    );
    let table = stdout_of(&succeed(&mut workspace.on_data(&[
        "limits",
        "show",
        "--account",
        "acme",
    ])));
    assert!(
        table
            .lines()
            .any(|line| line.starts_with("events_per_day") && line.contains("50000")),
        "{table}"
    );

    succeed(&mut workspace.on_data(&[
        "limits",
        "clear",
        "--account",
        "acme",
        "--field",
        "events_per_day",
    ]));
    let limits = shown_limits(&workspace);
    assert_eq!(limits["limits"]["events_per_day"]["value"], Value::Null);
    assert_eq!(limits["limits"]["stored_bytes"]["value"], 1_073_741_824_u64);

    // A quota past what the databases' signed 64-bit columns hold is a usage error naming it.
    let output = workspace
        .on_data(&[
            "limits",
            "set",
            "--account",
            "acme",
            "--stored-bytes",
            "9223372036854775808",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("--stored-bytes"),
        "{}",
        stderr_of(&output)
    );
    let output = fail(&mut workspace.on_data(&[
        "limits",
        "set",
        "--account",
        "nobody",
        "--events-per-day",
        "1",
    ]));
    assert!(
        stderr_of(&output).contains("account nobody does not exist"),
        "{}",
        stderr_of(&output)
    );
}
