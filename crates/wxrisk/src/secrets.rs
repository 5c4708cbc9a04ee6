//! Secrets at rest: AES-256-GCM under a master key, tagged with the key's id so keys can be rotated.
//!
//! Contract: a sealed secret is the text `v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`. The key id is the
//! first 8 hex digits of SHA-256(key), so no table maps ids to keys. The associated data is the secret's
//! *purpose* (`"providers.apiv3_key"`), so a sealed value copied into another column does not open. Plaintext
//! lives in [`SecretString`]/[`SecretBox`] and never reaches `Debug` output or a log line.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};

use crate::config::{Config, decode_master_key};

const FORMAT_VERSION: &str = "v1";
const KEY_FILE_RETIRED_PREFIX: &str = "master.key.retired-";

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("master key file {path}: {source}")]
    KeyFile { path: PathBuf, source: std::io::Error },
    #[error("master key file {path}: {reason}")]
    BadKeyFile { path: PathBuf, reason: String },
    #[error("a stored secret was sealed with master key {key_id}, which is not configured")]
    UnknownKey { key_id: String },
    #[error("a stored secret ({purpose}) does not open: corrupted, or sealed for another field")]
    Corrupt { purpose: String },
    #[error("encryption failed")]
    Seal,
}

struct MasterKey {
    id: String,
    raw: [u8; 32],
    key: LessSafeKey,
}

impl MasterKey {
    fn new(bytes: &[u8; 32]) -> Self {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
        let id = hex::encode(&digest.as_ref()[..4]);
        // AES_256_GCM takes exactly 32 bytes, so this cannot fail.
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).unwrap_or_else(|_| unreachable!("32-byte key"));
        Self { id, raw: *bytes, key: LessSafeKey::new(unbound) }
    }
}

/// The current master key (seals) and older ones (open only).
pub struct Keyring {
    current: MasterKey,
    older: Vec<MasterKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current.id)
            .field("older", &self.older.iter().map(|k| k.id.as_str()).collect::<Vec<_>>())
            .finish()
    }
}

impl Keyring {
    pub fn from_keys(current: &[u8; 32], older: &[[u8; 32]]) -> Self {
        let current = MasterKey::new(current);
        let older = older.iter().map(MasterKey::new).filter(|k| k.id != current.id).collect();
        Self { current, older }
    }

    /// The configured key, or the key file in the data directory (created with mode 0600 on first use), plus
    /// every older key that may still have sealed something: `master_key_previous`, retired key files, and
    /// a key file left by an interrupted rotation.
    pub fn load(config: &Config) -> Result<Self, SecretsError> {
        let mut older = Vec::new();
        for previous in &config.master_key_previous {
            // Validated when the configuration was loaded.
            if let Ok(bytes) = decode_master_key(previous.expose_secret()) {
                older.push(bytes);
            }
        }
        let file = config.master_key_file();
        older.extend(read_older_key_files(&file)?);
        let current = match &config.master_key {
            Some(key) => decode_master_key(key.expose_secret())
                .map_err(|reason| SecretsError::BadKeyFile { path: "WXRISK_MASTER_KEY".into(), reason })?,
            None => load_or_create_key_file(&file)?,
        };
        if config.master_key.is_some() && file.exists() {
            // A key file from before the key moved into the configuration may have sealed rows.
            older.push(read_key_file(&file)?);
        }
        Ok(Self::from_keys(&current, &older))
    }

    /// The same keys with `new` as the current one; every key of `self` still opens what it sealed.
    pub fn with_new_current(&self, new: &[u8; 32]) -> Self {
        let older: Vec<[u8; 32]> = std::iter::once(&self.current).chain(&self.older).map(|k| k.raw).collect();
        Self::from_keys(new, &older)
    }

    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    /// Seal `plaintext` for `purpose` under the current key.
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Result<String, SecretsError> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| SecretsError::Seal)?;
        let mut buffer = plaintext.to_vec();
        self.current
            .key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(purpose.as_bytes()), &mut buffer)
            .map_err(|_| SecretsError::Seal)?;
        let mut packed = Vec::with_capacity(NONCE_LEN + buffer.len());
        packed.extend_from_slice(&nonce);
        packed.extend_from_slice(&buffer);
        Ok(format!("{FORMAT_VERSION}.{}.{}", self.current.id, URL_SAFE_NO_PAD.encode(packed)))
    }

    pub fn seal_str(&self, purpose: &str, plaintext: &SecretString) -> Result<String, SecretsError> {
        self.seal(purpose, plaintext.expose_secret().as_bytes())
    }

    /// Open a sealed value with whichever configured key sealed it.
    pub fn open(&self, purpose: &str, sealed: &str) -> Result<secrecy::SecretBox<Vec<u8>>, SecretsError> {
        let corrupt = || SecretsError::Corrupt { purpose: purpose.to_owned() };
        let mut parts = sealed.splitn(3, '.');
        let (Some(FORMAT_VERSION), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(corrupt());
        };
        let key = std::iter::once(&self.current)
            .chain(&self.older)
            .find(|k| k.id == key_id)
            .ok_or_else(|| SecretsError::UnknownKey { key_id: key_id.to_owned() })?;
        let packed = URL_SAFE_NO_PAD.decode(body).map_err(|_| corrupt())?;
        if packed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(corrupt());
        }
        let (nonce, ciphertext) = packed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| corrupt())?;
        let mut buffer = ciphertext.to_vec();
        let plain_len =
            key.key.open_in_place(nonce, Aad::from(purpose.as_bytes()), &mut buffer).map_err(|_| corrupt())?.len();
        buffer.truncate(plain_len);
        Ok(secrecy::SecretBox::new(Box::new(buffer)))
    }

    pub fn open_string(&self, purpose: &str, sealed: &str) -> Result<SecretString, SecretsError> {
        let bytes = self.open(purpose, sealed)?;
        let text = std::str::from_utf8(bytes.expose_secret())
            .map_err(|_| SecretsError::Corrupt { purpose: purpose.to_owned() })?;
        Ok(SecretString::from(text.to_owned()))
    }

    /// Whether `sealed` is already under the current key (rotation skips it).
    pub fn is_current(&self, sealed: &str) -> bool {
        sealed.starts_with(&format!("{FORMAT_VERSION}.{}.", self.current.id))
    }
}

/// 32 random bytes.
pub fn generate_key() -> Result<[u8; 32], SecretsError> {
    let mut key = [0u8; 32];
    aws_lc_rs::rand::fill(&mut key).map_err(|_| SecretsError::Seal)?;
    Ok(key)
}

pub fn encode_key(key: &[u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD.encode(key)
}

fn read_key_file(path: &Path) -> Result<[u8; 32], SecretsError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| SecretsError::KeyFile { path: path.to_path_buf(), source })?;
    decode_master_key(&text).map_err(|reason| SecretsError::BadKeyFile { path: path.to_path_buf(), reason })
}

/// Read the key file, or create it. Creation writes a temporary file and hard-links it into place, so two
/// processes starting at once agree on one key and nobody ever reads a half-written file.
fn load_or_create_key_file(path: &Path) -> Result<[u8; 32], SecretsError> {
    let io_err = |source| SecretsError::KeyFile { path: path.to_path_buf(), source };
    if path.exists() {
        warn_if_readable_by_others(path);
        return read_key_file(path);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_err)?;
    }
    let key = generate_key()?;
    let temp = path.with_extension(format!("tmp-{}", std::process::id()));
    write_private_file(&temp, format!("{}\n", encode_key(&key)).as_bytes()).map_err(io_err)?;
    let linked = std::fs::hard_link(&temp, path);
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), "created a new master key file; back it up apart from the database");
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key_file(path),
        Err(e) => Err(io_err(e)),
    }
}

/// Write a new file readable by its owner only.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "the master key file is readable by other users; chmod 600 it");
        }
    }
}

/// Path of the key a rotation is moving to (kept until the rotation has finished).
pub fn next_key_file(current: &Path) -> PathBuf {
    current.with_extension("key.next")
}

fn read_older_key_files(current: &Path) -> Result<Vec<[u8; 32]>, SecretsError> {
    let mut keys = Vec::new();
    let next = next_key_file(current);
    if next.exists() {
        keys.push(read_key_file(&next)?);
    }
    let Some(dir) = current.parent() else {
        return Ok(keys);
    };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(keys);
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(KEY_FILE_RETIRED_PREFIX) {
            keys.push(read_key_file(&entry.path())?);
        }
    }
    Ok(keys)
}

/// After a rotation committed: keep the old key file as `master.key.retired-<id>` and make the new key current.
pub fn finish_file_rotation(current: &Path, old_id: &str) -> Result<(), SecretsError> {
    let io_err = |source| SecretsError::KeyFile { path: current.to_path_buf(), source };
    let retired = current.with_file_name(format!("{KEY_FILE_RETIRED_PREFIX}{old_id}"));
    if current.exists() && !retired.exists() {
        std::fs::rename(current, &retired).map_err(io_err)?;
    }
    std::fs::rename(next_key_file(current), current).map_err(io_err)
}

/// Read the pending rotation key, or create it.
pub fn load_or_create_next_key(current: &Path) -> Result<[u8; 32], SecretsError> {
    let next = next_key_file(current);
    if next.exists() {
        return read_key_file(&next);
    }
    let key = generate_key()?;
    write_private_file(&next, format!("{}\n", encode_key(&key)).as_bytes())
        .map_err(|source| SecretsError::KeyFile { path: next.clone(), source })?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open() {
        let ring = Keyring::from_keys(&[7u8; 32], &[]);
        let sealed = ring.seal("providers.apiv3_key", b"0123456789abcdef0123456789abcdef").expect("seal");
        assert!(sealed.starts_with(&format!("v1.{}.", ring.current_id())));
        assert!(!sealed.contains("0123456789abcdef"));
        let opened = ring.open("providers.apiv3_key", &sealed).expect("open");
        assert_eq!(opened.expose_secret().as_slice(), b"0123456789abcdef0123456789abcdef");
        // Two seals of the same value differ (random nonce).
        assert_ne!(sealed, ring.seal("providers.apiv3_key", b"0123456789abcdef0123456789abcdef").expect("seal"));
    }

    #[test]
    fn purpose_is_bound() {
        let ring = Keyring::from_keys(&[7u8; 32], &[]);
        let sealed = ring.seal("providers.apiv3_key", b"x").expect("seal");
        assert!(matches!(ring.open("channels.secrets", &sealed), Err(SecretsError::Corrupt { .. })));
    }

    #[test]
    fn tampering_and_unknown_keys_fail() {
        let ring = Keyring::from_keys(&[7u8; 32], &[]);
        let sealed = ring.seal("p", b"secret").expect("seal");
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        assert!(matches!(ring.open("p", &tampered), Err(SecretsError::Corrupt { .. })));
        assert!(matches!(ring.open("p", "v1.deadbeef.AAAA"), Err(SecretsError::UnknownKey { .. })));
        assert!(matches!(ring.open("p", "plaintext"), Err(SecretsError::Corrupt { .. })));
        assert!(matches!(ring.open("p", &format!("v1.{}.AA", ring.current_id())), Err(SecretsError::Corrupt { .. })));
    }

    #[test]
    fn older_keys_open_but_do_not_seal() {
        let old = Keyring::from_keys(&[1u8; 32], &[]);
        let sealed = old.seal("p", b"secret").expect("seal");
        let rotated = Keyring::from_keys(&[2u8; 32], &[[1u8; 32]]);
        assert!(!rotated.is_current(&sealed));
        assert_eq!(rotated.open("p", &sealed).expect("open").expose_secret().as_slice(), b"secret");
        let resealed = rotated.seal("p", b"secret").expect("seal");
        assert!(rotated.is_current(&resealed));
        assert!(old.open("p", &resealed).is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("wxrisk-keyfile-{}", std::process::id()));
        let path = dir.join("sub").join("master.key");
        let first = load_or_create_key_file(&path).expect("create");
        let second = load_or_create_key_file(&path).expect("read");
        assert_eq!(first, second);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
