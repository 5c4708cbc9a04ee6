//! Shared by the test binaries of every crate (each includes this file with `#[path]`): where the test key
//! material is, and which Python runs the cross-checks.

#![allow(dead_code)]

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A file of `testdata/` (keys and certificates made with OpenSSL).
pub fn testdata(name: &str) -> String {
    let path = format!("{}/../../testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The Python with the cross-check packages: `WXRISK_TEST_PYTHON`, else the workspace's `.venv`. A missing one
/// fails the test (run `./scripts/test`, which prepares it): a cross-check that silently skips proves nothing.
pub fn python() -> PathBuf {
    if let Ok(path) = std::env::var("WXRISK_TEST_PYTHON")
        && !path.is_empty()
    {
        return PathBuf::from(path);
    }
    let venv = PathBuf::from(format!("{}/../../.venv/bin/python3", env!("CARGO_MANIFEST_DIR")));
    assert!(venv.exists(), "no Python environment for the cross-checks: run ./scripts/test, which creates .venv");
    venv
}

/// Run a cross-check script with `args`, `input` on its standard input; its standard output. A script that fails
/// fails the test with what it printed on standard error.
pub fn run_python(script: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(python())
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts");
    child.stdin.take().expect("stdin").write_all(input).expect("write");
    let output = child.wait_with_output().expect("python runs");
    assert!(output.status.success(), "{script} failed: {}", String::from_utf8_lossy(&output.stderr));
    output.stdout
}
