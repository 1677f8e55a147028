//! `logbook sso show|set|clear`: an account's own single sign-on, on the database and with
//! `--server` through the management API, printed alike and never with its client secret.

use super::*;

const SECRET: &str = "a client secret nobody may see";

fn set_arguments(account: &str) -> Vec<String> {
    [
        "sso",
        "set",
        "--account",
        account,
        "--display-name",
        "Okta",
        "--issuer",
        "https://acme.okta.com",
        "--client-id",
        "0oa1client",
        "--client-secret-stdin",
        "--default-role",
        "member",
        "--invited-only",
        "--no-password-sign-in",
    ]
    .iter()
    .map(|argument| (*argument).to_owned())
    .collect()
}

#[test]
fn sso_settings_are_stored_shown_without_the_secret_and_cleared_on_the_database() {
    let workspace = Workspace::new();
    workspace.create_account("acme");
    let shown = succeed(&mut workspace.on_data(&["sso", "show", "--account", "acme", "--json"]));
    let shown: Value = serde_json::from_str(&stdout_of(&shown)).unwrap();
    assert_eq!(shown["source"], "none");

    let arguments = set_arguments("acme");
    let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
    let stored = with_stdin(&mut workspace.on_data(&arguments), &format!("{SECRET}\n"));
    assert!(stored.status.success(), "{}", stderr_of(&stored));
    assert!(
        stderr_of(&stored).contains("/login/sso/acme/callback"),
        "the redirect URI to register is printed: {}",
        stderr_of(&stored)
    );

    let shown = succeed(&mut workspace.on_data(&["sso", "show", "--account", "acme", "--json"]));
    let text = stdout_of(&shown);
    assert!(!text.contains(SECRET), "{text}");
    let shown: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(shown["source"], "database");
    assert_eq!(shown["settings"]["display_name"], "Okta");
    assert_eq!(shown["settings"]["client_secret_set"], true);
    assert_eq!(shown["settings"]["default_role"], "member");
    assert_eq!(shown["settings"]["invited_only"], true);
    assert_eq!(shown["settings"]["password_sign_in_allowed"], false);
    let lines = stdout_of(&succeed(&mut workspace.on_data(&[
        "sso",
        "show",
        "--account",
        "acme",
    ])));
    assert!(lines.contains("Okta") && !lines.contains(SECRET), "{lines}");

    succeed(&mut workspace.on_data(&["sso", "clear", "--account", "acme"]));
    let shown = succeed(&mut workspace.on_data(&["sso", "show", "--account", "acme", "--json"]));
    let shown: Value = serde_json::from_str(&stdout_of(&shown)).unwrap();
    assert_eq!(shown["source"], "none");
}

#[test]
fn a_plain_http_issuer_and_a_missing_secret_are_refused_and_nothing_is_stored() {
    let workspace = Workspace::new();
    workspace.create_account("acme");
    let refused = fail(&mut workspace.on_data(&[
        "sso",
        "set",
        "--account",
        "acme",
        "--display-name",
        "Okta",
        "--issuer",
        "http://acme.okta.com",
        "--client-id",
        "0oa1client",
    ]));
    assert!(
        stderr_of(&refused).contains("client_secret"),
        "{}",
        stderr_of(&refused)
    );
    let mut arguments = set_arguments("acme");
    arguments[6] = "http://acme.okta.com".into();
    let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
    let refused = with_stdin(&mut workspace.on_data(&arguments), &format!("{SECRET}\n"));
    assert!(!refused.status.success());
    assert!(
        stderr_of(&refused).contains("issuer"),
        "{}",
        stderr_of(&refused)
    );
    let shown = succeed(&mut workspace.on_data(&["sso", "show", "--account", "acme", "--json"]));
    let shown: Value = serde_json::from_str(&stdout_of(&shown)).unwrap();
    assert_eq!(shown["source"], "none");
}

#[test]
fn sso_set_and_show_work_over_http_with_an_admin_key() {
    let workspace = Workspace::new();
    workspace.create_account("acme");
    let admin_key = workspace.create_key("acme", "admin");
    let server = workspace.start_server();
    let arguments = set_arguments("acme");
    let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
    let stored = with_stdin(
        &mut workspace.client(&server, &admin_key, &arguments),
        &format!("{SECRET}\n"),
    );
    assert!(stored.status.success(), "{}", stderr_of(&stored));
    let shown = succeed(&mut workspace.client(
        &server,
        &admin_key,
        &["sso", "show", "--account", "acme", "--json"],
    ));
    let text = stdout_of(&shown);
    assert!(!text.contains(SECRET), "{text}");
    let shown: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(shown["source"], "database");
    assert_eq!(shown["settings"]["issuer"], "https://acme.okta.com");
    succeed(&mut workspace.client(&server, &admin_key, &["sso", "clear", "--account", "acme"]));
}
