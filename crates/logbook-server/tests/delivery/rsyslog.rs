//! A real rsyslog (Debian's `rsyslogd` with `imtcp`, `imrelp` and the GnuTLS stream driver),
//! started unprivileged in the foreground by a test with its own configuration in a temporary
//! directory: a plain TCP, a TLS (certificates from a private CA made here) and a RELP listener on
//! free ports of 127.0.0.1, listen backlogs left at rsyslog's defaults, every message written to
//! one file as `HOSTNAME APP-NAME MSGID STRUCTURED-DATA`.
//!
//! Without `rsyslogd` a local run prints `SKIPPED` and the test returns; under CI (`CI` set) a
//! missing rsyslog fails the test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";

/// A running (or stopped, between `stop` and `start`) rsyslog.
pub struct Rsyslog {
    directory: PathBuf,
    child: Option<Child>,
    pub tcp_port: u16,
    pub tls_port: u16,
    pub relp_port: u16,
    /// The PEM of the CA that signed the TLS listener's certificate (for `localhost` and
    /// `127.0.0.1`).
    pub ca_pem: String,
}

/// rsyslogd with the modules the tests use, or `None` after printing why the test is skipped;
/// under CI a missing rsyslog is a failure.
pub fn available(test: &str) -> bool {
    let modules = Path::new("/usr/lib/x86_64-linux-gnu/rsyslog");
    let missing: Vec<&str> = [
        (RSYSLOGD, Path::new(RSYSLOGD).exists()),
        ("imrelp (rsyslog-relp)", modules.join("imrelp.so").exists()),
        (
            "lmnsd_gtls (rsyslog-gnutls)",
            modules.join("lmnsd_gtls.so").exists(),
        ),
    ]
    .into_iter()
    .filter(|(_, present)| !present)
    .map(|(name, _)| name)
    .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must provide rsyslog with RELP and GnuTLS (missing: {missing:?}); .ci/run installs them"
    );
    eprintln!("SKIPPED ({test}: rsyslog is not installed here, missing {missing:?})");
    false
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Rsyslog {
    /// Writes the configuration and certificates into `directory` and starts rsyslogd.
    pub fn start_in(directory: &Path) -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Logbook test CA");
        let ca_certificate = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let server_key = rcgen::KeyPair::generate().unwrap();
        let mut server_params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap();
        server_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        let server_certificate = server_params.signed_by(&server_key, &issuer).unwrap();
        std::fs::write(directory.join("ca.pem"), ca_certificate.pem()).unwrap();
        std::fs::write(directory.join("server.pem"), server_certificate.pem()).unwrap();
        std::fs::write(directory.join("server-key.pem"), server_key.serialize_pem()).unwrap();

        let mut rsyslog = Self {
            directory: directory.to_owned(),
            child: None,
            tcp_port: free_port(),
            tls_port: free_port(),
            relp_port: free_port(),
            ca_pem: ca_certificate.pem(),
        };
        let directory_text = directory.display();
        // The main queue gets 10 s at shutdown to write out what it accepted (rsyslog's default
        // is 1.5 s, after which it discards): what a collector acknowledged must reach the file.
        let configuration = format!(
            r#"global(workDirectory="{directory_text}" maxMessageSize="64k"
  defaultNetstreamDriverCAFile="{directory_text}/ca.pem"
  defaultNetstreamDriverCertFile="{directory_text}/server.pem"
  defaultNetstreamDriverKeyFile="{directory_text}/server-key.pem")
main_queue(queue.timeoutShutdown="10000")
module(load="imtcp")
module(load="imrelp")
template(name="fields" type="string" string="%hostname% %app-name% %msgid% %structured-data%\n")
ruleset(name="to_file") {{ action(type="omfile" file="{directory_text}/received.log" template="fields") }}
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="to_file")
input(type="imtcp" address="127.0.0.1" port="{tls}" ruleset="to_file" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imrelp" address="127.0.0.1" port="{relp}" ruleset="to_file")
"#,
            tcp = rsyslog.tcp_port,
            tls = rsyslog.tls_port,
            relp = rsyslog.relp_port,
        );
        std::fs::write(directory.join("rsyslog.conf"), configuration).unwrap();
        rsyslog.start();
        rsyslog
    }

    /// Starts rsyslogd (again) on the same ports and waits until every listener accepts.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "rsyslog is already running");
        let log = std::fs::File::create(self.directory.join("rsyslogd.out")).unwrap();
        let child = Command::new(RSYSLOGD)
            .arg("-n")
            .arg("-f")
            .arg(self.directory.join("rsyslog.conf"))
            .arg("-i")
            .arg(self.directory.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("rsyslogd starts");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        for port in [self.tcp_port, self.tls_port, self.relp_port] {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "rsyslogd did not listen on {port}: {}",
                    std::fs::read_to_string(self.directory.join("rsyslogd.out"))
                        .unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Stops rsyslogd the way a service manager does (SIGTERM) and waits until it has exited,
    /// so everything it accepted is in the file.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if child.try_wait().unwrap().is_some() {
                return;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("rsyslogd did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every line written out in full so far. rsyslog's file action writes through a 4 KiB buffer
    /// and flushes it when full, so a read while it is writing can end in the first part of a
    /// line; that part is left for the next read, which sees the whole line.
    pub fn received_lines(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.directory.join("received.log")).unwrap_or_default();
        let written_in_full = match text.rfind('\n') {
            Some(last_newline) => &text[..last_newline],
            None => "",
        };
        written_in_full.lines().map(str::to_owned).collect()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The value of `name="..."` in a line's structured data.
pub fn parameter<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!(" {name}=\""))? + name.len() + 3;
    let length = line[start..].find('"')?;
    Some(&line[start..start + length])
}
