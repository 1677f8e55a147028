//! The client side of RELP, the Reliable Event Logging Protocol that rsyslog (`imrelp`) and
//! syslog-ng speak: Logbook's own small implementation, since no maintained Rust client exists.
//!
//! A frame is `TXNR SP COMMAND SP DATALEN [SP DATA] LF`. A session opens with an `open` command
//! offering `relp_version` and `commands=syslog`; each message is a `syslog` command whose data
//! is the RFC 5424 message; the collector answers every command with `rsp` and the same TXNR,
//! in order, with data starting `200` (accepted) or another status (refused). Several commands
//! may be outstanding (the window). TXNR counts from 1 and wraps from 999,999,999 back to 1.
//! TXNR 0 carries hints such as the collector's `serverclose`, which are never answered.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::sender::SendError;

/// Largest answer Logbook reads from a collector; a longer one ends the session (a hostile
/// collector cannot make Logbook buffer without bound).
pub const MAX_RESPONSE_DATA_BYTES: usize = 64 * 1024;
const MAX_TXNR: u32 = 999_999_999;
const MAX_COMMAND_BYTES: usize = 32;

/// One RELP frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub txnr: u32,
    pub command: String,
    pub data: Vec<u8>,
}

/// `TXNR SP COMMAND SP DATALEN [SP DATA] LF`.
pub fn encode_frame(txnr: u32, command: &str, data: &[u8]) -> Vec<u8> {
    let mut frame = format!("{txnr} {command} {}", data.len()).into_bytes();
    if !data.is_empty() {
        frame.push(b' ');
        frame.extend_from_slice(data);
    }
    frame.push(b'\n');
    frame
}

/// The TXNR after `txnr`.
pub fn next_txnr(txnr: u32) -> u32 {
    if txnr >= MAX_TXNR { 1 } else { txnr + 1 }
}

fn protocol_error(message: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.into())
}

/// Reads ASCII up to (not including) `delimiter`, at most `max` bytes.
async fn read_token<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
    what: &str,
) -> std::io::Result<Option<String>> {
    let mut token = Vec::new();
    loop {
        let mut byte = [0u8; 1];
        if reader.read(&mut byte).await? == 0 {
            if token.is_empty() {
                return Ok(None);
            }
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        match byte[0] {
            b' ' => return Ok(Some(String::from_utf8_lossy(&token).into_owned())),
            // A DATALEN of 0 is followed directly by the trailer.
            b'\n' if what == "DATALEN" => {
                token.push(b'\n');
                return Ok(Some(String::from_utf8_lossy(&token).into_owned()));
            }
            other if token.len() < max => token.push(other),
            _ => {
                return Err(protocol_error(format!(
                    "the collector sent a {what} that is too long"
                )));
            }
        }
    }
}

/// Reads one frame; `None` when the collector closed the connection between frames.
pub async fn read_frame<R: AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<Option<Frame>> {
    let Some(txnr) = read_token(reader, 9, "TXNR").await? else {
        return Ok(None);
    };
    let txnr: u32 = txnr
        .parse()
        .map_err(|_| protocol_error("the collector sent a TXNR that is not a number"))?;
    let command = read_token(reader, MAX_COMMAND_BYTES, "COMMAND")
        .await?
        .ok_or(std::io::ErrorKind::UnexpectedEof)?;
    if !command.bytes().all(|byte| byte.is_ascii_alphabetic()) {
        return Err(protocol_error(
            "the collector sent a command that is not letters",
        ));
    }
    let length_text = read_token(reader, 10, "DATALEN")
        .await?
        .ok_or(std::io::ErrorKind::UnexpectedEof)?;
    let (length_text, trailer_read) = match length_text.strip_suffix('\n') {
        Some(digits) => (digits.to_owned(), true),
        None => (length_text, false),
    };
    let length: usize = length_text
        .parse()
        .map_err(|_| protocol_error("the collector sent a DATALEN that is not a number"))?;
    if length > MAX_RESPONSE_DATA_BYTES {
        return Err(protocol_error(
            "the collector sent a frame larger than Logbook reads",
        ));
    }
    if trailer_read {
        if length != 0 {
            return Err(protocol_error(
                "the collector's frame ended before its data",
            ));
        }
        return Ok(Some(Frame {
            txnr,
            command,
            data: Vec::new(),
        }));
    }
    let mut data = vec![0u8; length];
    reader.read_exact(&mut data).await?;
    let mut trailer = [0u8; 1];
    reader.read_exact(&mut trailer).await?;
    if trailer[0] != b'\n' {
        return Err(protocol_error("the collector's frame has no LF trailer"));
    }
    Ok(Some(Frame {
        txnr,
        command,
        data,
    }))
}

/// The status code of an `rsp` frame's data (`200 OK...` -> 200) and its human text.
pub fn response_status(data: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(data);
    let first_line = text.split('\n').next().unwrap_or_default();
    let status: u16 = first_line.get(..3)?.parse().ok()?;
    let human: String = first_line
        .get(3..)
        .unwrap_or_default()
        .trim()
        .chars()
        .filter(|character| !character.is_control())
        .take(200)
        .collect();
    Some((status, human))
}

/// What happened to one message of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageOutcome {
    /// `rsp 200`: the collector has it.
    Accepted,
    /// Another status: the collector refused it.
    Refused(String),
}

/// An open RELP session over TCP.
pub struct RelpSession {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_txnr: u32,
}

impl RelpSession {
    /// Sends `open` and checks the collector's offers: it must answer 200 with a `relp_version`
    /// and accept the `syslog` command.
    pub async fn open(stream: TcpStream, timeout: Duration) -> Result<Self, SendError> {
        let (reader, writer) = stream.into_split();
        let mut session = Self {
            reader: BufReader::new(reader),
            writer,
            next_txnr: 1,
        };
        let offers = format!(
            "relp_version=0\nrelp_software=logbook,{}\ncommands=syslog",
            env!("CARGO_PKG_VERSION")
        );
        let txnr = session.take_txnr();
        let answer = tokio::time::timeout(timeout, async {
            write_all(
                &mut session.writer,
                &encode_frame(txnr, "open", offers.as_bytes()),
            )
            .await?;
            session.read_response().await
        })
        .await
        .map_err(|_| SendError::TimedOut(timeout))??;
        if answer.txnr != txnr {
            return Err(SendError::Protocol(format!(
                "the collector answered open with TXNR {} instead of {txnr}",
                answer.txnr
            )));
        }
        let text = String::from_utf8_lossy(&answer.data).into_owned();
        match response_status(&answer.data) {
            Some((200, _)) => {}
            Some((status, human)) => {
                return Err(SendError::Protocol(format!(
                    "the collector refused the RELP session: {status} {human}"
                )));
            }
            None => {
                return Err(SendError::Protocol(
                    "the collector's open answer has no status".to_owned(),
                ));
            }
        }
        let offers_syslog = text.lines().any(|line| {
            line.strip_prefix("commands=")
                .is_some_and(|commands| commands.split(',').any(|command| command == "syslog"))
        });
        if !text.lines().any(|line| line.starts_with("relp_version=")) || !offers_syslog {
            return Err(SendError::Protocol(
                "the collector does not offer RELP's syslog command".to_owned(),
            ));
        }
        Ok(session)
    }

    fn take_txnr(&mut self) -> u32 {
        let txnr = self.next_txnr;
        self.next_txnr = next_txnr(txnr);
        txnr
    }

    /// The next `rsp` frame; a `serverclose` hint or a closed connection is an error.
    async fn read_response(&mut self) -> Result<Frame, SendError> {
        loop {
            let frame = read_frame(&mut self.reader)
                .await
                .map_err(|error| SendError::Transport(error.to_string()))?
                .ok_or_else(|| {
                    SendError::Transport("the collector closed the RELP session".to_owned())
                })?;
            match (frame.txnr, frame.command.as_str()) {
                (0, "serverclose") => {
                    return Err(SendError::Transport(
                        "the collector closed the RELP session (serverclose)".to_owned(),
                    ));
                }
                // Other hints are advisory and unanswered.
                (0, _) => continue,
                (_, "rsp") => return Ok(frame),
                (_, other) => {
                    return Err(SendError::Protocol(format!(
                        "the collector sent the command {other:?} where an rsp was due"
                    )));
                }
            }
        }
    }

    /// Whether the collector has closed the session (or sent anything unprompted) while it was
    /// idle: it is then reopened rather than written into.
    pub async fn closed_while_idle(&mut self) -> bool {
        if !self.reader.buffer().is_empty() {
            return true;
        }
        let mut probe = [0u8; 1];
        // Ready at once means data or end of stream; either way the session is not idle.
        tokio::time::timeout(Duration::ZERO, self.reader.get_mut().peek(&mut probe))
            .await
            .is_ok()
    }

    /// Sends `messages` as `syslog` commands with at most `window` unanswered at once, in
    /// order, and returns each one's outcome, in order. Stops at the first transport error:
    /// the outcomes gathered so far are returned with it, and the rest were not acknowledged.
    pub async fn send_messages(
        &mut self,
        messages: &[&str],
        window: usize,
        timeout: Duration,
    ) -> (Vec<MessageOutcome>, Option<SendError>) {
        let window = window.max(1);
        let mut outcomes = Vec::with_capacity(messages.len());
        let mut in_flight: VecDeque<u32> = VecDeque::new();
        let mut next = 0;
        while outcomes.len() < messages.len() {
            // Fill the window, then flush once.
            let mut pending = Vec::new();
            while next < messages.len() && in_flight.len() < window {
                let txnr = self.take_txnr();
                pending.extend_from_slice(&encode_frame(txnr, "syslog", messages[next].as_bytes()));
                in_flight.push_back(txnr);
                next += 1;
            }
            if !pending.is_empty() {
                match tokio::time::timeout(timeout, write_all(&mut self.writer, &pending)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => return (outcomes, Some(error)),
                    Err(_) => return (outcomes, Some(SendError::TimedOut(timeout))),
                }
            }
            let answer = match tokio::time::timeout(timeout, self.read_response()).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(error)) => return (outcomes, Some(error)),
                Err(_) => return (outcomes, Some(SendError::TimedOut(timeout))),
            };
            let expected = in_flight.pop_front().unwrap_or_default();
            if answer.txnr != expected {
                return (
                    outcomes,
                    Some(SendError::Protocol(format!(
                        "the collector answered TXNR {} where {expected} was due",
                        answer.txnr
                    ))),
                );
            }
            outcomes.push(match response_status(&answer.data) {
                Some((200, _)) => MessageOutcome::Accepted,
                Some((status, human)) => MessageOutcome::Refused(format!("RELP {status} {human}")),
                None => MessageOutcome::Refused("RELP answer without a status".to_owned()),
            });
        }
        (outcomes, None)
    }

    /// Ends the session politely: `close`, its answer (bounded by `timeout`), then the socket.
    pub async fn close(mut self, timeout: Duration) {
        let txnr = self.take_txnr();
        let _ = tokio::time::timeout(timeout, async {
            write_all(&mut self.writer, &encode_frame(txnr, "close", b"")).await?;
            self.read_response().await
        })
        .await;
        let _ = self.writer.shutdown().await;
    }
}

async fn write_all<W: AsyncWrite + Unpin>(writer: &mut W, bytes: &[u8]) -> Result<(), SendError> {
    writer
        .write_all(bytes)
        .await
        .map_err(|error| SendError::Transport(error.to_string()))?;
    writer
        .flush()
        .await
        .map_err(|error| SendError::Transport(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(bytes: &[u8]) -> std::io::Result<Option<Frame>> {
        let mut reader = BufReader::new(bytes);
        read_frame(&mut reader).await
    }

    #[test]
    fn frames_are_encoded_with_their_data_length_in_bytes() {
        assert_eq!(
            encode_frame(7, "syslog", "é".as_bytes()),
            b"7 syslog 2 \xc3\xa9\n"
        );
        assert_eq!(encode_frame(3, "close", b""), b"3 close 0\n");
    }

    #[tokio::test]
    async fn responses_with_and_without_data_parse() {
        let frame = parse(b"12 rsp 6 200 OK\n").await.unwrap().unwrap();
        assert_eq!(frame.txnr, 12);
        assert_eq!(frame.command, "rsp");
        assert_eq!(response_status(&frame.data), Some((200, "OK".to_owned())));
        let hint = parse(b"0 serverclose 0\n").await.unwrap().unwrap();
        assert_eq!(
            (hint.txnr, hint.command.as_str(), hint.data.len()),
            (0, "serverclose", 0)
        );
        let open = parse(b"1 rsp 38 200 OK\nrelp_version=0\ncommands=syslog\n\n")
            .await
            .unwrap()
            .unwrap();
        assert!(String::from_utf8_lossy(&open.data).contains("commands=syslog"));
        assert_eq!(parse(b"").await.unwrap(), None);
    }

    #[tokio::test]
    async fn malformed_or_oversized_frames_are_errors() {
        for bad in [
            &b"x rsp 6 200 OK\n"[..],
            b"1 rsp 6 200 OK!",
            b"1 rsp 3 200",
            b"1 r5p 6 200 OK\n",
            b"1234567890 rsp 0\n",
        ] {
            assert!(
                parse(bad).await.is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let oversized = format!("1 rsp {} ", MAX_RESPONSE_DATA_BYTES + 1);
        assert!(parse(oversized.as_bytes()).await.is_err());
    }

    #[test]
    fn txnr_wraps_from_999_999_999_to_1() {
        assert_eq!(next_txnr(1), 2);
        assert_eq!(next_txnr(999_999_999), 1);
    }

    #[test]
    fn a_status_other_than_200_is_read_with_its_text() {
        assert_eq!(
            response_status(b"500 queue full\nextra"),
            Some((500, "queue full".to_owned()))
        );
        assert_eq!(response_status(b"OK"), None);
    }
}
