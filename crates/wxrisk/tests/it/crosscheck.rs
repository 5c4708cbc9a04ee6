//! Our at-rest encryption checked against an implementation we did not write: PyPI `cryptography`'s AESGCM.
//! `scripts/test` prepares the Python environment (`.venv`); run through it, this test cannot be skipped.

use std::process::Command;

use base64::Engine as _;
use secrecy::ExposeSecret as _;
use wxrisk::secrets::{Keyring, SecretSlot};

use crate::support::python;

/// Opens `<version>.<key id>.<body>` with the associated data given, after checking the version.
const OPEN_SCRIPT: &str = r#"
import base64, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
key = base64.b64decode(sys.argv[1]); version = sys.argv[2]; aad = sys.argv[3].encode(); sealed = sys.argv[4]
got, key_id, body = sealed.split(".", 2)
assert got == version, got
packed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
print(AESGCM(key).decrypt(packed[:12], packed[12:], aad).decode(), end="")
"#;

/// Seals in format `version` with the associated data given (v1: `table.column`; v2: `table.column/row`).
const SEAL_SCRIPT: &str = r#"
import base64, hashlib, os, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
key = base64.b64decode(sys.argv[1]); version = sys.argv[2]; aad = sys.argv[3].encode(); plaintext = sys.argv[4].encode()
nonce = os.urandom(12)
body = base64.urlsafe_b64encode(nonce + AESGCM(key).encrypt(nonce, plaintext, aad)).decode().rstrip("=")
print(version + "." + hashlib.sha256(key).hexdigest()[:8] + "." + body, end="")
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

    // We seal for provider 7's APIv3 key; Python opens it with the associated data written out by hand.
    let slot = SecretSlot::new("providers.apiv3_key_sealed", 7);
    let sealed = ring.seal(&slot, secret.as_bytes()).expect("seal");
    let (ok, out, err) = python_run(OPEN_SCRIPT, &[&key_b64, "v2", "providers.apiv3_key_sealed/7", &sealed]);
    assert!(ok, "python could not open our sealed value: {err}");
    assert_eq!(out, secret);
    // Column and row are authenticated: Python refuses it for another row, another column, or the column alone.
    for aad in ["providers.apiv3_key_sealed/8", "channels.secrets_sealed/7", "providers.apiv3_key_sealed"] {
        let (ok, _, err) = python_run(OPEN_SCRIPT, &[&key_b64, "v2", aad, &sealed]);
        assert!(!ok && err.contains("InvalidTag"), "{aad}: {err}");
    }

    // Python seals for channel 3 (its own key id computation too), we open it there and only there.
    let plaintext = "{\"password\":\"授权码\"}";
    let (ok, python_sealed, err) = python_run(SEAL_SCRIPT, &[&key_b64, "v2", "channels.secrets_sealed/3", plaintext]);
    assert!(ok, "{err}");
    assert!(ring.is_current(&python_sealed), "key ids agree: {python_sealed}");
    let opened = ring
        .open_string(&SecretSlot::new("channels.secrets_sealed", 3), &python_sealed)
        .expect("we open Python's value");
    assert_eq!(opened.expose_secret(), plaintext);
    assert!(ring.open(&SecretSlot::new("channels.secrets_sealed", 4), &python_sealed).is_err());

    // The old format, as a value stored before row binding: the move to row binding opens it, nothing else does.
    let (ok, v1, err) = python_run(SEAL_SCRIPT, &[&key_b64, "v1", "channels.secrets_sealed", plaintext]);
    assert!(ok, "{err}");
    let opened = ring.open_unbound_v1("channels.secrets_sealed", &v1).expect("v1 opens for the move");
    assert_eq!(opened.expose_secret().as_slice(), plaintext.as_bytes());
    assert!(matches!(
        ring.open(&SecretSlot::new("channels.secrets_sealed", 3), &v1),
        Err(wxrisk::secrets::SecretsError::Unbound { .. })
    ));
}
