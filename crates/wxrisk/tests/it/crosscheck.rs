//! Our at-rest encryption checked against an implementation we did not write: PyPI `cryptography`'s AESGCM.
//! `scripts/test` prepares the Python environment (`.venv`); run through it, this test cannot be skipped.

use std::process::Command;

use base64::Engine as _;
use secrecy::ExposeSecret as _;
use wxrisk::secrets::Keyring;

use crate::support::python;

const OPEN_SCRIPT: &str = r#"
import base64, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
key = base64.b64decode(sys.argv[1]); purpose = sys.argv[2].encode(); sealed = sys.argv[3]
version, key_id, body = sealed.split(".", 2)
assert version == "v1", version
packed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
print(AESGCM(key).decrypt(packed[:12], packed[12:], purpose).decode(), end="")
"#;

const SEAL_SCRIPT: &str = r#"
import base64, hashlib, os, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
key = base64.b64decode(sys.argv[1]); purpose = sys.argv[2].encode(); plaintext = sys.argv[3].encode()
nonce = os.urandom(12)
body = base64.urlsafe_b64encode(nonce + AESGCM(key).encrypt(nonce, plaintext, purpose)).decode().rstrip("=")
print("v1." + hashlib.sha256(key).hexdigest()[:8] + "." + body, end="")
"#;

fn python_run(script: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(python()).arg("-c").arg(script).args(args).output().expect("python runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn sealed_secrets_interoperate_with_python_cryptography() {
    let key = [0x5au8; 32];
    let key_b64 = base64::engine::general_purpose::STANDARD.encode(key);
    let ring = Keyring::from_keys(&key, &[]);
    let secret = "0123456789abcdefABCDEF0123456789";

    // We seal, Python opens.
    let sealed = ring.seal("providers.apiv3_key_sealed", secret.as_bytes()).expect("seal");
    let (ok, out, err) = python_run(OPEN_SCRIPT, &[&key_b64, "providers.apiv3_key_sealed", &sealed]);
    assert!(ok, "python could not open our sealed value: {err}");
    assert_eq!(out, secret);
    // The purpose is authenticated: Python refuses it under another one.
    let (ok, _, err) = python_run(OPEN_SCRIPT, &[&key_b64, "channels.secrets_sealed", &sealed]);
    assert!(!ok && err.contains("InvalidTag"), "{err}");

    // Python seals (its own key id computation too), we open.
    let (ok, python_sealed, err) =
        python_run(SEAL_SCRIPT, &[&key_b64, "channels.secrets_sealed", "{\"password\":\"授权码\"}"]);
    assert!(ok, "{err}");
    assert!(ring.is_current(&python_sealed), "key ids agree: {python_sealed}");
    let opened = ring.open_string("channels.secrets_sealed", &python_sealed).expect("we open Python's value");
    assert_eq!(opened.expose_secret(), "{\"password\":\"授权码\"}");
}
