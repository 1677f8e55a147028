//! A small W3C WebDriver client over `reqwest`, enough to drive chromedriver: sessions,
//! navigation, elements, scripts, screenshots and Chrome DevTools commands (through chromedriver's
//! `goog/cdp/execute`, which a generic WebDriver crate would need a custom command for anyway).

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// The key W3C WebDriver uses for an element reference in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One browser session on a chromedriver; ended with [`Browser::quit`].
pub struct Browser {
    client: reqwest::Client,
    session_url: String,
}

/// A reference to an element of the current page.
#[derive(Clone, Debug)]
pub struct Element(String);

impl Browser {
    /// Opens a session with the given capabilities.
    pub async fn open(driver_url: &str, capabilities: Value) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|error| error.to_string())?;
        let answer: Value = client
            .post(format!("{driver_url}/session"))
            .json(&json!({ "capabilities": { "alwaysMatch": capabilities } }))
            .send()
            .await
            .map_err(|error| error.to_string())?
            .json()
            .await
            .map_err(|error| error.to_string())?;
        let session_id = answer["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| format!("chromedriver did not open a session: {answer}"))?;
        Ok(Self {
            client,
            session_url: format!("{driver_url}/session/{session_id}"),
        })
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.session_url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request
            .send()
            .await
            .unwrap_or_else(|error| panic!("WebDriver {method} {path}: {error}"))
            .json()
            .await
            .unwrap_or_else(|error| panic!("WebDriver {method} {path} answered no JSON: {error}"));
        if let Some(error) = answer["value"]["error"].as_str() {
            panic!(
                "WebDriver {method} {path} failed: {error}: {}",
                answer["value"]["message"]
            );
        }
        answer["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.command(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    pub async fn current_url(&self) -> String {
        self.command(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn find(&self, css: &str) -> Element {
        let value = self
            .post("/element", json!({ "using": "css selector", "value": css }))
            .await;
        Element(
            value[ELEMENT_KEY]
                .as_str()
                .unwrap_or_else(|| panic!("no element reference for {css}: {value}"))
                .to_owned(),
        )
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.post(&format!("/element/{}/clear", element.0), json!({}))
            .await;
        self.post(
            &format!("/element/{}/value", element.0),
            json!({ "text": text }),
        )
        .await;
    }

    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.post(&format!("/element/{}/click", element.0), json!({}))
            .await;
    }

    /// Presses and releases each key of `keys` in turn on whatever has the focus, as a person at
    /// the keyboard would (W3C actions; `\u{E007}` is Enter, `\u{E00C}` Escape, `\u{E004}` Tab).
    pub async fn press_keys(&self, keys: &str) {
        let actions: Vec<Value> = keys
            .chars()
            .flat_map(|key| {
                [
                    json!({ "type": "keyDown", "value": key.to_string() }),
                    json!({ "type": "keyUp", "value": key.to_string() }),
                ]
            })
            .collect();
        self.post(
            "/actions",
            json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": actions }] }),
        )
        .await;
        self.command(reqwest::Method::DELETE, "/actions", None)
            .await;
    }

    /// Clicks the element matching `css` with Shift held down (W3C actions).
    pub async fn shift_click(&self, css: &str) {
        let element = self.find(css).await;
        let shift = "\u{E008}";
        self.post(
            "/actions",
            json!({ "actions": [
                { "type": "key", "id": "keyboard", "actions": [
                    { "type": "keyDown", "value": shift }, { "type": "pause", "duration": 0 },
                    { "type": "pause", "duration": 0 }, { "type": "keyUp", "value": shift } ] },
                { "type": "pointer", "id": "mouse", "parameters": { "pointerType": "mouse" }, "actions": [
                    { "type": "pointerMove", "origin": { ELEMENT_KEY: element.0 }, "x": 0, "y": 0 },
                    { "type": "pointerDown", "button": 0 },
                    { "type": "pointerUp", "button": 0 },
                    { "type": "pause", "duration": 0 } ] }
            ] }),
        )
        .await;
        self.command(reqwest::Method::DELETE, "/actions", None)
            .await;
    }

    /// Presses the mouse at viewport point `from`, moves it in steps to `to` and releases it there
    /// (W3C actions), as a person drags across something.
    pub async fn drag(&self, from: (i64, i64), to: (i64, i64)) {
        let mut actions = vec![
            json!({ "type": "pointerMove", "origin": "viewport", "x": from.0, "y": from.1 }),
            json!({ "type": "pointerDown", "button": 0 }),
        ];
        for step in 1..=5 {
            actions.push(json!({ "type": "pointerMove", "duration": 20, "origin": "viewport",
                "x": from.0 + (to.0 - from.0) * step / 5, "y": from.1 + (to.1 - from.1) * step / 5 }));
        }
        actions.push(json!({ "type": "pointerUp", "button": 0 }));
        self.post(
            "/actions",
            json!({ "actions": [{ "type": "pointer", "id": "mouse", "parameters": { "pointerType": "mouse" }, "actions": actions }] }),
        )
        .await;
        self.command(reqwest::Method::DELETE, "/actions", None)
            .await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns what it returns.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    /// Polls `script` until it returns something truthy, and returns that; panics after `timeout`
    /// with `what` and the page's text, so a failure says what the page showed instead.
    pub async fn wait_for(&self, what: &str, script: &str, timeout: Duration) -> Value {
        let started = Instant::now();
        loop {
            let value = self.execute(script, json!([])).await;
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(flag) => *flag,
                Value::String(text) => !text.is_empty(),
                Value::Array(items) => !items.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            if started.elapsed() > timeout {
                let text = self
                    .execute(
                        "return document.body ? document.body.innerText : ''",
                        json!([]),
                    )
                    .await;
                panic!(
                    "timed out waiting for {what} at {}; the page shows:\n{}",
                    self.current_url().await,
                    text.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A Chrome DevTools Protocol command through chromedriver.
    pub async fn devtools(&self, command: &str, parameters: Value) -> Value {
        self.post(
            "/goog/cdp/execute",
            json!({ "cmd": command, "params": parameters }),
        )
        .await
    }

    /// The viewport as a PNG.
    pub async fn screenshot_png(&self) -> Vec<u8> {
        let encoded = self
            .command(reqwest::Method::GET, "/screenshot", None)
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap())
            .unwrap()
    }

    /// The browser console and CSP reports chromedriver collected since the last call.
    pub async fn browser_log(&self) -> Vec<Value> {
        self.post("/se/log", json!({ "type": "browser" }))
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Moves into the `index`th frame of the current page (WebDriver "Switch To Frame").
    pub async fn switch_to_frame(&self, index: u64) {
        self.post("/frame", json!({ "id": index })).await;
    }

    /// Moves back to the top-level page.
    pub async fn switch_to_top(&self) {
        self.post("/frame", json!({ "id": null })).await;
    }

    pub async fn delete_cookies(&self) {
        self.command(reqwest::Method::DELETE, "/cookie", None).await;
    }

    pub async fn quit(self) {
        let _ = self.client.delete(&self.session_url).send().await;
    }
}
