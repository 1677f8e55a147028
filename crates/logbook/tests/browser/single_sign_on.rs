//! Single sign-on in real Chromium against a real OpenID provider: the certified `oidc-provider`
//! npm package (`oidc_provider/provider.mjs`, installed by `.ci/run` with `npm ci`), started by
//! each test on 127.0.0.1 with Logbook as its client. Its development login form accepts any
//! login name, which becomes the person's email. For the hostile cases the provider is started
//! misbehaving (`OIDC_MISBEHAVE`): its own ID token re-signed for another audience or already
//! expired, signed with a key that is not in its JWKS, or its claims saying the email is not
//! verified. Each refusal must show a clear page and leave a `logbook.sso.refused` event with its
//! reason in the account's log.
//!
//! Without Node.js or the installed package a local run prints a loud `SKIPPED` line; under CI
//! (`CI=true`) the tests fail instead.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use serde_json::Value;

use super::{Chromium, PASSWORD, Site, WAIT, browser_tools, webdriver::Browser};

const CLIENT_ID: &str = "logbook-test-client";
const CLIENT_SECRET: &str = "logbook test client secret";

fn provider_directory() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/oidc_provider")
}

/// Whether Node.js and the provider's installed package are here; says so loudly when not.
fn provider_available() -> bool {
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    let installed = provider_directory()
        .join("node_modules/oidc-provider/package.json")
        .is_file();
    if node && installed {
        return true;
    }
    let why = if node {
        "the oidc-provider package is not installed: run `npm ci` in crates/logbook/tests/browser/oidc_provider"
    } else {
        "Node.js is not installed"
    };
    if std::env::var("CI").is_ok_and(|value| value == "true") {
        panic!("single sign-on tests need a real OpenID provider: {why}");
    }
    eprintln!("\n!!!!!!!! SKIPPED (no OpenID provider: {why}) !!!!!!!!\n");
    false
}

/// The `oidc-provider` process, stopped when dropped.
struct Provider {
    child: Child,
    issuer: String,
    /// Every answer the provider sent the browser back to Logbook with.
    redirects: Arc<Mutex<Vec<String>>>,
    /// How many times the provider answered for its JWKS (printed in `rotated_keys` mode only).
    jwks_answers: Arc<Mutex<u32>>,
}

impl Provider {
    fn start(redirect_uri: &str, misbehave: &str) -> Self {
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .current_dir(provider_directory())
            .env("OIDC_PORT", "0")
            .env("OIDC_CLIENT_ID", CLIENT_ID)
            .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
            .env("OIDC_REDIRECT_URI", redirect_uri)
            .env("OIDC_MISBEHAVE", misbehave)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node starts the OpenID provider");
        let stdout = child.stdout.take().unwrap();
        let redirects = Arc::new(Mutex::new(Vec::new()));
        let (sender, receiver) = mpsc::channel();
        let jwks_answers = Arc::new(Mutex::new(0));
        let seen = redirects.clone();
        let counted = jwks_answers.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(issuer) = line.strip_prefix("listening ") {
                    let _ = sender.send(issuer.to_owned());
                } else if let Some(url) = line.strip_prefix("redirect ") {
                    seen.lock().unwrap().push(url.to_owned());
                } else if let Some(count) = line.strip_prefix("jwks ") {
                    *counted.lock().unwrap() = count.parse().unwrap_or_default();
                }
            }
        });
        let issuer = receiver
            .recv_timeout(Duration::from_secs(30))
            .expect("the OpenID provider announces its issuer");
        Provider {
            child,
            issuer,
            redirects,
            jwks_answers,
        }
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a test changes in the `[sso]` section.
struct SsoOptions {
    misbehave: &'static str,
    invited_only: bool,
    password_sign_in_allowed: bool,
    /// Set with `logbook sso set` (stored in the database) instead of the `[sso]` section.
    stored_with_the_cli: bool,
    /// Whether the operator lets an account's own issuer be a loopback or private address
    /// (`[delivery] allow_private_destinations`); the test provider listens on 127.0.0.1.
    private_issuer_allowed: bool,
}

const WELL_BEHAVED: SsoOptions = SsoOptions {
    misbehave: "",
    invited_only: false,
    password_sign_in_allowed: true,
    stored_with_the_cli: false,
    private_issuer_allowed: true,
};

/// Account `acme` with an owner, a read key, and `[sso]` pointing at a fresh provider; then
/// `logbook serve` and Chromium. `None` when the tools are missing (already said loudly).
async fn sso_site(options: SsoOptions) -> Option<(Site, Provider, Chromium, String)> {
    let tools = browser_tools()?;
    if !provider_available() {
        return None;
    }
    // The provider must know Logbook's redirect URI before Logbook knows the provider's issuer,
    // so Logbook's port is chosen first.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let provider = Provider::start(
        &format!("http://127.0.0.1:{port}/login/sso/acme/callback"),
        options.misbehave,
    );
    let mut site = Site::new();
    site.account("acme");
    site.user("acme", "owner@acme.example", "owner");
    let key = site.key("acme");
    let config = site.directory.path().join("logbook.toml");
    if options.stored_with_the_cli {
        let mut arguments = vec![
            "sso",
            "set",
            "--account",
            "acme",
            "--display-name",
            "Test IdP",
            "--issuer",
            &provider.issuer,
            "--client-id",
            CLIENT_ID,
            "--client-secret-stdin",
        ];
        if options.invited_only {
            arguments.push("--invited-only");
        }
        if !options.password_sign_in_allowed {
            arguments.push("--no-password-sign-in");
        }
        site.run(&arguments, &format!("{CLIENT_SECRET}\n"));
        std::fs::write(
            &config,
            format!(
                "[delivery]\nallow_private_destinations = {}\n",
                options.private_issuer_allowed
            ),
        )
        .unwrap();
        serve_with_config(&mut site, &config, port);
        let chromium = Chromium::start(&tools).await;
        return Some((site, provider, chromium, key));
    }
    std::fs::write(
        &config,
        format!(
            "[sso]\ndisplay_name = \"Test IdP\"\nissuer = \"{issuer}\"\nclient_id = \"{CLIENT_ID}\"\n\
             client_secret = \"{CLIENT_SECRET}\"\naccounts = [\"acme\"]\ndefault_role = \"viewer\"\n\
             invited_only = {invited_only}\npassword_sign_in_allowed = {password}\n",
            issuer = provider.issuer,
            invited_only = options.invited_only,
            password = options.password_sign_in_allowed,
        ),
    )
    .unwrap();
    serve_with_config(&mut site, &config, port);
    let chromium = Chromium::start(&tools).await;
    Some((site, provider, chromium, key))
}

fn serve_with_config(site: &mut Site, config: &std::path::Path, port: u16) {
    serve_with(site, config, port, &[]);
}

fn serve_with(site: &mut Site, config: &std::path::Path, port: u16, more: &[&str]) {
    let listen = format!("127.0.0.1:{port}");
    let config = config.to_str().expect("a UTF-8 temporary path");
    let mut arguments = vec!["serve", "--listen", &listen, "--config", config];
    arguments.extend_from_slice(more);
    let mut child = site
        .logbook(&arguments)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("logbook serve starts");
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(address) = line.strip_prefix("listening on ") {
                let _ = sender.send(address.to_owned());
            }
        }
    });
    site.server = Some(child);
    site.base_url = receiver
        .recv_timeout(Duration::from_secs(30))
        .expect("logbook serve announces its address");
}

/// From the sign-in page through the provider's login form, as a person would.
async fn sign_in_at_the_provider(browser: &Browser, site: &Site, email: &str) {
    browser.goto(&site.url("/login")).await;
    browser
        .wait_for(
            "the provider's button on the sign-in page",
            "const link = document.querySelector('#single-sign-on a'); return link && link.textContent === 'Sign in with Test IdP';",
            WAIT,
        )
        .await;
    browser.click("#single-sign-on a").await;
    browser
        .wait_for(
            "the provider's login form",
            "return document.querySelector('input[name=login]') !== null;",
            WAIT,
        )
        .await;
    browser.type_into("input[name=login]", email).await;
    browser
        .type_into("input[name=password]", "any password")
        .await;
    browser.click("button[type=submit]").await;
}

async fn wait_for_activity_logs(browser: &Browser) {
    browser
        .wait_for(
            "the Activity Logs page after single sign-on",
            "const heading = document.querySelector('h1'); return heading && heading.textContent === 'Activity Logs';",
            WAIT,
        )
        .await;
}

/// Waits for the refusal page and returns its message.
async fn refusal_message(browser: &Browser) -> String {
    browser
        .wait_for(
            "the sign-in refused page",
            "const heading = document.querySelector('h1'); return heading && heading.textContent === 'Sign-in refused';",
            WAIT,
        )
        .await;
    browser
        .execute(
            "return document.querySelector('main p, section p').textContent;",
            serde_json::json!([]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The account's events with this action, newest first, through the read API.
async fn events_with_action(site: &Site, key: &str, action: &str) -> Vec<Value> {
    let page: Value = site
        .http
        .get(site.url("/api/v1/events"))
        .query(&[("q", format!("action:{action}"))])
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["events"]
        .as_array()
        .unwrap_or_else(|| panic!("events answered {page}"))
        .clone()
}

fn users_of(site: &Site) -> Vec<Value> {
    // Only `serve` locks the data directory; the CLI reads the same SQLite database beside it.
    let output = site
        .logbook(&["user", "list", "--account", "acme", "--json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "user list failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_sign_in_with_the_provider_creates_the_person_with_the_default_role() {
    let Some((site, _provider, chromium, key)) = sso_site(WELL_BEHAVED).await else {
        return;
    };
    let browser = chromium.browser();
    sign_in_at_the_provider(browser, &site, "new.person@acme.example").await;
    wait_for_activity_logs(browser).await;
    let signed_in_as = browser
        .execute(
            "return document.querySelector('.who .email').textContent;",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(signed_in_as, "new.person@acme.example");

    let sign_ins = events_with_action(&site, &key, "logbook.sso.sign_in").await;
    assert_eq!(sign_ins.len(), 1, "{sign_ins:?}");
    assert_eq!(sign_ins[0]["actor"]["id"], "new.person@acme.example");
    assert_eq!(sign_ins[0]["metadata"]["created"], true);
    assert_eq!(sign_ins[0]["metadata"]["role"], "viewer");
    assert_eq!(sign_ins[0]["metadata"]["provider"], "Test IdP");
    let sessions = events_with_action(&site, &key, "logbook.login").await;
    assert_eq!(sessions[0]["metadata"]["method"], "single_sign_on");

    let users = users_of(&site);
    let person = users
        .iter()
        .find(|user| user["email"] == "new.person@acme.example")
        .expect("the person was created");
    assert_eq!(person["role"], "viewer");

    // The person has no password: the form refuses any.
    browser.delete_cookies().await;
    browser.goto(&site.url("/login")).await;
    browser.type_into("#email", "new.person@acme.example").await;
    browser.type_into("#password", "!single-sign-on").await;
    browser
        .click("form[action='/login'] button[type=submit]")
        .await;
    browser
        .wait_for(
            "the password refusal",
            "const error = document.querySelector('#login-error'); return error && error.textContent.includes('incorrect');",
            WAIT,
        )
        .await;
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_signed_with_a_key_published_after_logbook_read_the_keys_is_accepted() {
    let Some((site, provider, chromium, key)) = sso_site(SsoOptions {
        misbehave: "rotated_keys",
        ..WELL_BEHAVED
    })
    .await
    else {
        return;
    };
    let browser = chromium.browser();
    sign_in_at_the_provider(browser, &site, "rotation@acme.example").await;
    wait_for_activity_logs(browser).await;
    assert_eq!(
        *provider.jwks_answers.lock().unwrap(),
        2,
        "the unknown key id made Logbook fetch the provider's keys once more"
    );
    assert_eq!(
        events_with_action(&site, &key, "logbook.sso.sign_in")
            .await
            .len(),
        1
    );
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_set_up_with_logbook_sso_set_signs_its_people_in_with_that_provider() {
    let Some((site, _provider, chromium, key)) = sso_site(SsoOptions {
        stored_with_the_cli: true,
        ..WELL_BEHAVED
    })
    .await
    else {
        return;
    };
    let browser = chromium.browser();
    sign_in_at_the_provider(browser, &site, "stored@acme.example").await;
    wait_for_activity_logs(browser).await;
    let sign_ins = events_with_action(&site, &key, "logbook.sso.sign_in").await;
    assert_eq!(sign_ins[0]["actor"]["id"], "stored@acme.example");
    chromium.stop().await;
}

/// An account's own issuer is set by the account's admins, so Logbook reaches it only through
/// the guard alert deliveries use: a loopback issuer is refused unless the operator allows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accounts_own_issuer_on_a_private_address_is_not_reached_unless_the_operator_allows_it()
{
    let Some((site, _provider, chromium, key)) = sso_site(SsoOptions {
        stored_with_the_cli: true,
        private_issuer_allowed: false,
        ..WELL_BEHAVED
    })
    .await
    else {
        return;
    };
    let browser = chromium.browser();
    browser.goto(&site.url("/login")).await;
    browser
        .wait_for(
            "the provider's button on the sign-in page",
            "return document.querySelector('#single-sign-on a');",
            WAIT,
        )
        .await;
    browser.click("#single-sign-on a").await;
    browser
        .wait_for(
            "the refusal page",
            "return document.body.innerText.includes('Logbook could not reach your identity provider.');",
            WAIT,
        )
        .await;
    let refused = events_with_action(&site, &key, "logbook.sso.refused").await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["metadata"]["reason"], "provider_unreachable");
    chromium.stop().await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Two nodes on one PostgreSQL database: the sign-in starts on one and the provider sends the
/// browser back to the other (its public URL), which finds the attempt in the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_started_on_one_node_is_finished_by_another() {
    let Some(tools) = browser_tools() else {
        return;
    };
    if !provider_available() {
        return;
    }
    let Some(database) = logbook_store_postgres::scratch_database::ScratchDatabase::create().await
    else {
        return;
    };
    let (first_port, second_port) = (free_port(), free_port());
    let provider = Provider::start(
        &format!("http://127.0.0.1:{second_port}/login/sso/acme/callback"),
        "",
    );
    let database_arguments = ["--database", database.url.as_str()];
    let mut first = Site::new();
    let mut second = Site::new();
    let setup = |arguments: &[&str]| {
        let mut all = arguments.to_vec();
        all.extend_from_slice(&database_arguments);
        first.run(&all, "")
    };
    setup(&["account", "create", "acme"]);
    let key_output = setup(&[
        "key",
        "create",
        "--account",
        "acme",
        "--scope",
        "read",
        "--json",
    ]);
    let key: Value = serde_json::from_slice(&key_output.stdout).unwrap();
    let key = key["key"].as_str().unwrap().to_owned();
    let config_text = format!(
        "[web]\npublic_url = \"http://127.0.0.1:{second_port}\"\n\n[sso]\ndisplay_name = \"Test IdP\"\n\
         issuer = \"{issuer}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n\
         accounts = [\"acme\"]\n",
        issuer = provider.issuer,
    );
    for (site, port) in [(&mut first, first_port), (&mut second, second_port)] {
        let config = site.directory.path().join("logbook.toml");
        std::fs::write(&config, &config_text).unwrap();
        serve_with(site, &config, port, &database_arguments);
    }
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    sign_in_at_the_provider(browser, &first, "traveller@acme.example").await;
    wait_for_activity_logs(browser).await;
    let url = browser.current_url().await;
    assert!(
        url.starts_with(&second.base_url),
        "the browser finished on the second node: {url}"
    );
    let sign_ins = events_with_action(&first, &key, "logbook.sso.sign_in").await;
    assert_eq!(sign_ins.len(), 1, "{sign_ins:?}");
    chromium.stop().await;
}

/// Single sign-on replaces the password step only: a person with Logbook's two-factor sign-in
/// on is asked for their code after the provider, on a page the cross-site answer set up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_with_two_factor_sign_in_is_asked_for_the_code_after_the_provider() {
    use logbook_core::Clock;
    let Some((site, _provider, chromium, key)) = sso_site(WELL_BEHAVED).await else {
        return;
    };
    let browser = chromium.browser();
    sign_in_at_the_provider(browser, &site, "careful@acme.example").await;
    wait_for_activity_logs(browser).await;
    browser.goto(&site.url("/security")).await;
    browser
        .click("form[action='/security/second-factor/start'] button")
        .await;
    let secret = browser
        .wait_for(
            "the new two-factor secret",
            "const secret = document.querySelector('#totp-secret'); return secret && secret.textContent;",
            WAIT,
        )
        .await;
    let secret = logbook_core::totp::base32_decode(secret.as_str().unwrap()).unwrap();
    let code = || logbook_core::totp::code_at(&secret, logbook_core::SystemClock.now());
    browser.type_into("#totp-code", &code()).await;
    browser
        .click("form[action='/security/second-factor/confirm'] button")
        .await;
    browser
        .wait_for(
            "the recovery codes",
            "return document.querySelector('#recovery-codes') !== null;",
            WAIT,
        )
        .await;

    browser.delete_cookies().await;
    sign_in_at_the_provider(browser, &site, "careful@acme.example").await;
    browser
        .wait_for(
            "the two-factor step after the provider",
            "return document.querySelector('form[action=\"/login/second-factor\"] #code') !== null;",
            WAIT,
        )
        .await;
    browser.type_into("#code", &code()).await;
    browser
        .click("form[action='/login/second-factor'] button[type=submit]")
        .await;
    wait_for_activity_logs(browser).await;
    assert_eq!(
        events_with_action(&site, &key, "logbook.sso.sign_in")
            .await
            .len(),
        2
    );
    chromium.stop().await;
}

/// The `state` is bound to the browser that started the sign-in: without the short-lived
/// `logbook_sso` cookie (another browser, or a victim sent a forged callback link), the
/// provider's answer is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_reaching_a_browser_without_the_sign_in_cookie_is_refused() {
    let Some((site, _provider, chromium, key)) = sso_site(WELL_BEHAVED).await else {
        return;
    };
    let browser = chromium.browser();
    browser.goto(&site.url("/login")).await;
    browser.click("#single-sign-on a").await;
    browser
        .wait_for(
            "the provider's login form",
            "return document.querySelector('input[name=login]') !== null;",
            WAIT,
        )
        .await;
    browser
        .devtools(
            "Network.deleteCookies",
            serde_json::json!({ "name": "logbook_sso", "domain": "127.0.0.1", "path": "/login/sso/acme" }),
        )
        .await;
    browser
        .type_into("input[name=login]", "victim@acme.example")
        .await;
    browser
        .type_into("input[name=password]", "any password")
        .await;
    browser.click("button[type=submit]").await;
    let message = refusal_message(browser).await;
    assert!(message.contains("another browser"), "{message}");
    let refused = events_with_action(&site, &key, "logbook.sso.refused").await;
    assert_eq!(refused[0]["metadata"]["reason"], "other_browser");
    assert!(
        users_of(&site)
            .iter()
            .all(|user| user["email"] != "victim@acme.example")
    );
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_state_is_refused_with_a_clear_message_and_an_event() {
    let Some((site, provider, chromium, key)) = sso_site(WELL_BEHAVED).await else {
        return;
    };
    let browser = chromium.browser();
    sign_in_at_the_provider(browser, &site, "replayer@acme.example").await;
    wait_for_activity_logs(browser).await;
    let answer = provider
        .redirects
        .lock()
        .unwrap()
        .last()
        .cloned()
        .expect("the provider sent the browser back with its answer");
    assert!(answer.contains("state="), "{answer}");
    browser.goto(&answer).await;
    let message = refusal_message(browser).await;
    assert!(message.contains("already used"), "{message}");
    let refused = events_with_action(&site, &key, "logbook.sso.refused").await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(
        refused[0]["metadata"]["reason"],
        "unknown_or_replayed_state"
    );
    assert_eq!(refused[0]["outcome"], "failure");
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_for_invited_people_only_refuses_strangers_and_its_people_use_only_the_provider()
{
    let Some((site, _provider, chromium, key)) = sso_site(SsoOptions {
        invited_only: true,
        password_sign_in_allowed: false,
        ..WELL_BEHAVED
    })
    .await
    else {
        return;
    };
    let browser = chromium.browser();
    sign_in_at_the_provider(browser, &site, "stranger@acme.example").await;
    let message = refusal_message(browser).await;
    assert!(message.contains("only invited people"), "{message}");
    let refused = events_with_action(&site, &key, "logbook.sso.refused").await;
    assert_eq!(refused[0]["metadata"]["reason"], "not_invited");
    assert_eq!(refused[0]["actor"]["id"], "stranger@acme.example");
    assert!(
        users_of(&site)
            .iter()
            .all(|user| user["email"] != "stranger@acme.example"),
        "nobody is created in an invited-only account"
    );

    // The owner exists already: the provider signs them in...
    browser.delete_cookies().await;
    sign_in_at_the_provider(browser, &site, "owner@acme.example").await;
    wait_for_activity_logs(browser).await;
    // ...and their password no longer does.
    browser.delete_cookies().await;
    browser.goto(&site.url("/login")).await;
    browser.type_into("#email", "owner@acme.example").await;
    browser.type_into("#password", PASSWORD).await;
    browser
        .click("form[action='/login'] button[type=submit]")
        .await;
    browser
        .wait_for(
            "the refusal of password sign-in",
            "const error = document.querySelector('#login-error'); return error && error.textContent.includes('signs in with Test IdP only');",
            WAIT,
        )
        .await;
    chromium.stop().await;
}

/// Starts a sign-in against a misbehaving provider and checks the page and the event.
async fn hostile_token_is_refused(misbehave: &'static str, expected_text: &str, reason: &str) {
    let Some((site, _provider, chromium, key)) = sso_site(SsoOptions {
        misbehave,
        ..WELL_BEHAVED
    })
    .await
    else {
        return;
    };
    let browser = chromium.browser();
    sign_in_at_the_provider(browser, &site, "target@acme.example").await;
    let message = refusal_message(browser).await;
    assert!(message.contains(expected_text), "{misbehave}: {message}");
    let refused = events_with_action(&site, &key, "logbook.sso.refused").await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["metadata"]["reason"], reason);
    assert!(
        events_with_action(&site, &key, "logbook.sso.sign_in")
            .await
            .is_empty()
    );
    assert!(
        users_of(&site)
            .iter()
            .all(|user| user["email"] != "target@acme.example"),
        "a refused token creates nobody"
    );
    // Nothing secret or internal reaches the page.
    let text = browser
        .execute("return document.body.innerText;", serde_json::json!([]))
        .await;
    let text = text.as_str().unwrap_or_default();
    assert!(
        !text.contains(CLIENT_SECRET) && !text.contains("eyJ"),
        "{text}"
    );
    chromium.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_for_another_audience_is_refused_with_a_clear_message_and_an_event() {
    hostile_token_is_refused("wrong_audience", "wrong audience", "wrong_audience").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refused_with_a_clear_message_and_an_event() {
    hostile_token_is_refused("expired", "has expired", "expired_token").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_with_a_bad_signature_is_refused_with_a_clear_message_and_an_event() {
    hostile_token_is_refused("bad_signature", "bad signature", "bad_signature").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unverified_email_is_refused_with_a_clear_message_and_an_event() {
    hostile_token_is_refused(
        "email_unverified",
        "email not verified",
        "email_not_verified",
    )
    .await;
}
