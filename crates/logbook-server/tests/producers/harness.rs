//! What the producer tests share: finding the installed clients (skipping loudly locally, failing
//! under CI when they are missing), running a client script, and a recording proxy between the
//! client and Logbook that can answer 503 after forwarding a request, the way a lost answer looks
//! to a client.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;

/// The interpreters and installed packages a script needs.
pub struct Clients {
    pub directory: PathBuf,
}

impl Clients {
    fn directory() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/producers/clients")
    }

    /// The clients when `.ci/run` installed them; otherwise `None` after a loud `SKIPPED` line, or
    /// a failure under CI (`CI=true`), where a missing client must never pass as a skip.
    pub fn installed(test: &str, needs_python: bool, needs_node: bool) -> Option<Self> {
        let directory = Self::directory();
        let mut missing = Vec::new();
        if needs_python && !directory.join("venv/bin/python").exists() {
            missing.push("the Python clients (clients/venv)");
        }
        if needs_node && !directory.join("node_modules/@retracedhq/retraced").exists() {
            missing.push("the npm clients (clients/node_modules)");
        }
        if needs_node
            && std::process::Command::new("node")
                .arg("--version")
                .output()
                .is_err()
        {
            missing.push("node");
        }
        if missing.is_empty() {
            return Some(Self { directory });
        }
        let reason = format!(
            "{test}: {} not installed; .ci/run installs them",
            missing.join(" and ")
        );
        if std::env::var("CI").is_ok_and(|value| value == "true") {
            panic!("{reason}");
        }
        eprintln!("SKIPPED ({reason})");
        None
    }

    fn script(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/producers/scripts")
            .join(name)
    }

    /// Runs `scripts/<name>` (Python or Node by its extension) with `environment`, expecting it to
    /// exit 0, and returns the JSON lines it printed.
    pub async fn run(&self, name: &str, environment: &[(&str, String)]) -> Vec<Value> {
        let mut command = if name.ends_with(".py") {
            tokio::process::Command::new(self.directory.join("venv/bin/python"))
        } else {
            let mut node = tokio::process::Command::new("node");
            node.env("NODE_PATH", self.directory.join("node_modules"));
            node
        };
        command
            .arg(Self::script(name))
            .env_remove("WORKOS_API_KEY")
            .env_remove("OTEL_EXPORTER_OTLP_HEADERS")
            .kill_on_drop(true);
        for (variable, value) in environment {
            command.env(variable, value);
        }
        let output = tokio::time::timeout(std::time::Duration::from_secs(120), command.output())
            .await
            .unwrap_or_else(|_| panic!("{name} did not finish within 120 s"))
            .unwrap_or_else(|error| panic!("could not run {name}: {error}"));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{name} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
            output.status
        );
        stdout
            .lines()
            .filter(|line| line.starts_with('{'))
            .map(|line| serde_json::from_str(line).expect("a JSON line from the script"))
            .collect()
    }
}

/// The step named `name` among a script's JSON lines.
pub fn step<'lines>(lines: &'lines [Value], name: &str) -> &'lines Value {
    lines
        .iter()
        .find(|line| line["step"] == name)
        .unwrap_or_else(|| panic!("no step {name:?} in {lines:?}"))
}

/// One request the proxy passed on and the answer the client got.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub request_headers: axum::http::HeaderMap,
    pub request_body: Bytes,
    pub status: StatusCode,
    pub response_content_type: Option<String>,
    pub response_body: Bytes,
    /// The answer was replaced by a 503 after Logbook had answered.
    pub answer_lost: bool,
}

#[derive(Default)]
struct ProxyState {
    upstream: String,
    exchanges: Mutex<Vec<Exchange>>,
    /// Requests to lose the answer of: a path suffix and a text the body must contain (or any
    /// body), each used once.
    lose_answers: Mutex<Vec<(String, Option<String>)>>,
    http: reqwest::Client,
}

/// A proxy on `127.0.0.1:0` in front of a Logbook server.
pub struct RecordingProxy {
    pub base_url: String,
    state: Arc<ProxyState>,
}

impl RecordingProxy {
    pub async fn start(upstream: &str) -> Self {
        let state = Arc::new(ProxyState {
            upstream: upstream.to_owned(),
            ..ProxyState::default()
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let address = listener.local_addr().expect("proxy address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base_url: format!("http://{address}"),
            state,
        }
    }

    /// The next request whose path ends with `path_suffix` (and whose body contains `marker`,
    /// when given) reaches Logbook, but its client gets a 503 with `Retry-After: 0` instead of
    /// Logbook's answer.
    pub fn lose_next_answer(&self, path_suffix: &str, marker: Option<&str>) {
        self.state
            .lose_answers
            .lock()
            .unwrap()
            .push((path_suffix.to_owned(), marker.map(str::to_owned)));
    }

    pub fn exchanges(&self) -> Vec<Exchange> {
        self.state.exchanges.lock().unwrap().clone()
    }
}

async fn forward(State(state): State<Arc<ProxyState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .expect("read the request body");
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), ToString::to_string);
    let mut upstream_request = state
        .http
        .request(
            parts.method.clone(),
            format!("{}{path_and_query}", state.upstream),
        )
        .body(body.clone());
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            upstream_request = upstream_request.header(name, value);
        }
    }
    let upstream_response = upstream_request.send().await.expect("Logbook answers");
    let status = upstream_response.status();
    let content_type = upstream_response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let retry_after = upstream_response.headers().get("retry-after").cloned();
    let response_body = upstream_response.bytes().await.expect("Logbook's answer");

    let answer_lost = {
        let mut lose_answers = state.lose_answers.lock().unwrap();
        let position = lose_answers.iter().position(|(suffix, marker)| {
            parts.uri.path().ends_with(suffix.as_str())
                && marker.as_ref().is_none_or(|marker| {
                    body.windows(marker.len())
                        .any(|window| window == marker.as_bytes())
                })
        });
        position
            .map(|position| lose_answers.remove(position))
            .is_some()
    };
    state.exchanges.lock().unwrap().push(Exchange {
        request_headers: parts.headers.clone(),
        request_body: body.clone(),
        status,
        response_content_type: content_type.clone(),
        response_body: response_body.clone(),
        answer_lost,
    });
    if answer_lost {
        let mut response = Response::new(Body::from("answer lost by the test proxy"));
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from_static("0"));
        return response;
    }
    let mut response = Response::new(Body::from(response_body));
    *response.status_mut() = status;
    if let Some(content_type) = content_type {
        response.headers_mut().insert(
            "content-type",
            HeaderValue::from_str(&content_type).expect("a header value"),
        );
    }
    if let Some(retry_after) = retry_after {
        response.headers_mut().insert("retry-after", retry_after);
    }
    response
}
