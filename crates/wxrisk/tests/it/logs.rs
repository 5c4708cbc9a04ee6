//! What `wxrisk serve` writes to its log stream: plain text when the stream is not a terminal (a file, a pipe, a
//! journal), colours on a terminal unless `NO_COLOR` is set, and field values as values — `listening
//! addr=127.0.0.1:8080`, never `Some(…)`.

use std::io::{BufRead as _, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::helpers::*;

const ESCAPE: &str = "\x1b[";

/// Runs `command` (whose output is piped to us), collects its output lines until one contains `listening`, then
/// stops the process with SIGTERM (`pid_line`: the first line is the pid to stop, as the terminal case prints it)
/// and returns everything it wrote.
fn until_listening(mut child: Child, output: impl Read + Send + 'static, pid_line: bool) -> Vec<String> {
    let (lines_tx, lines_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(output).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line.trim_end_matches('\r').to_owned()).is_err() {
                break;
            }
        }
    });
    let mut lines: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !lines.iter().any(|line| line.contains("listening")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines_rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("no `listening` line: {lines:#?}");
            }
        }
    }
    let pid = if pid_line { lines.first().expect("pid line").trim().to_owned() } else { child.id().to_string() };
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let status = child.wait().expect("wait");
    assert!(status.success(), "exit status {status}: {lines:#?}");
    reader.join().expect("reader");
    lines.extend(lines_rx.try_iter());
    lines
}

/// `wxrisk serve` on a free port with its log stream (stderr) piped, as under systemd or `> file`.
fn serve_piped(db: &TestDb, env: &[(&str, &str)]) -> Vec<String> {
    let mut command = wxrisk_command(db);
    command.env_remove("NO_COLOR").env("WXRISK_LISTEN", "127.0.0.1:0").envs(env.iter().copied());
    let mut child = command
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let stderr = child.stderr.take().expect("stderr");
    until_listening(child, stderr, false)
}

/// `wxrisk serve` with a terminal as its log stream: run under util-linux `script`, which gives it a pseudo-terminal
/// and copies what it writes there to our pipe.
fn serve_on_terminal(db: &TestDb, no_color: Option<&str>) -> Vec<String> {
    let bin = wxrisk_bin();
    let shell = format!("echo $$; exec '{}' serve", bin.display());
    let mut command = Command::new("script");
    // The same environment as wxrisk_command gives, on script instead of wxrisk.
    for (key, value) in wxrisk_command(db).get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    command.current_dir(db.data_dir()).env("WXRISK_LISTEN", "127.0.0.1:0").env_remove("NO_COLOR");
    if let Some(value) = no_color {
        command.env("NO_COLOR", value);
    }
    let mut child = command
        .args(["--quiet", "--flush", "--return", "--command", &shell, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs (package bsdutils)");
    let stdout = child.stdout.take().expect("stdout");
    until_listening(child, stdout, true)
}

/// The `listening` line ends `listening addr=127.0.0.1:<port>`, with a real port.
fn assert_listening_line(lines: &[String]) {
    let line = lines.iter().find(|line| line.contains("listening")).expect("listening line");
    let port = line.rsplit_once("listening addr=127.0.0.1:").map(|(_, port)| port);
    assert!(port.and_then(|p| p.parse::<u16>().ok()).is_some_and(|p| p != 0), "{line:?}");
}

#[tokio::test]
async fn logs_to_a_pipe_are_plain_text_with_displayed_values() {
    let db = TestDb::new().await;
    let lines = serve_piped(&db, &[("WXRISK_LOG__LEVEL", "info")]);
    assert!(!lines.iter().any(|line| line.contains(ESCAPE)), "colour codes in a piped log: {lines:#?}");
    assert!(!lines.iter().any(|line| line.contains("Some(")), "a Debug-formatted Option in the log: {lines:#?}");
    assert_listening_line(&lines);

    // JSON lines carry the address as a string, too.
    let lines = serve_piped(&db, &[("WXRISK_LOG__LEVEL", "info"), ("WXRISK_LOG__FORMAT", "json")]);
    let listening: serde_json::Value = lines
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|record| record["fields"]["message"] == "listening")
        .expect("a JSON listening record");
    let addr = listening["fields"]["addr"].as_str().expect("addr is a string");
    assert!(addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"), "{listening}");
}

#[tokio::test]
async fn logs_on_a_terminal_have_colours_unless_no_color() {
    let db = TestDb::new().await;
    let coloured = serve_on_terminal(&db, None);
    assert!(coloured.iter().any(|line| line.contains(ESCAPE)), "no colours on a terminal: {coloured:#?}");
    for no_color in ["1", "true"] {
        let plain = serve_on_terminal(&db, Some(no_color));
        assert!(!plain.iter().any(|line| line.contains(ESCAPE)), "NO_COLOR={no_color}: {plain:#?}");
        assert_listening_line(&plain);
    }
}
