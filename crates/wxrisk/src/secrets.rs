//! Secrets at rest: AES-256-GCM under a master key, tagged with the key's id so keys can be rotated, and bound to
//! the row they are stored in.
//!
//! Contract: a sealed secret is the text `v2.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`. The key id is the
//! first 8 hex digits of SHA-256(key), so no table maps ids to keys. The associated data is the secret's
//! [`SecretSlot`]: `<table>.<column>/<row>` (`providers.apiv3_key_sealed/7`; the row is the id, or the key of a
//! table keyed otherwise, such as an official account's appid), so a sealed value copied into another column *or
//! another row* does not open — a database writer cannot give provider B provider A's key. Plaintext lives in
//! [`SecretString`]/[`SecretBox`](secrecy::SecretBox) and never reaches `Debug` output or a log line.
//!
//! Values sealed before row binding existed have the format `v1` (associated data `<table>.<column>` only). They
//! move to `v2` once: at the first start of this version (and in `wxrisk secrets rotate`), every `v1` value is
//! opened with [`Keyring::open_unbound_v1`] and re-sealed for its row, in one transaction that also records that
//! the move happened (`store::secrets::bind_to_rows`). From then on [`Keyring::open`] refuses a `v1` value for any
//! slot ([`SecretsError::Unbound`]) and the move does not run again: a `v1` value that appears later can only be
//! a copy from an old backup or a database writer's work, and binding it to whichever row it sits in is exactly
//! the swap this format prevents. Such a value is reported and has to be set again.

use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};

use crate::config::{Config, decode_master_key};
use crate::private_files::{self, ReadableKeyFile};

/// Row-bound: the format [`Keyring::seal`] writes.
const FORMAT_ROW_BOUND: &str = "v2";
/// Column-bound only: read once, by the move to row binding.
const FORMAT_UNBOUND: &str = "v1";
const KEY_FILE_RETIRED_PREFIX: &str = "master.key.retired-";

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("master key file {path}: {source}")]
    KeyFile { path: PathBuf, source: std::io::Error },
    #[error("master key file {path}: {reason}")]
    BadKeyFile { path: PathBuf, reason: String },
    #[error(transparent)]
    ReadableKeyFile(#[from] ReadableKeyFile),
    #[error("a stored secret was sealed with master key {key_id}, which is not configured")]
    UnknownKey { key_id: String },
    #[error("a stored secret ({slot}) does not open: corrupted, or sealed for another column or row")]
    Corrupt { slot: String },
    #[error(
        "a stored secret ({slot}) is in the old v1 format, which is not bound to its row and is no longer accepted \
         (all v1 values were re-sealed when wxrisk moved to row-bound secrets); set it again"
    )]
    Unbound { slot: String },
    #[error("encryption failed")]
    Seal,
}

/// Where a sealed value is stored — its column and its row — which is what it is sealed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSlot {
    /// `table.column`.
    column: &'static str,
    row: String,
}

impl SecretSlot {
    /// `column` is `table.column`; `row` the row's id (or key).
    pub fn new(column: &'static str, row: impl std::fmt::Display) -> Self {
        Self { column, row: row.to_string() }
    }

    /// `table.column`.
    pub fn column(&self) -> &'static str {
        self.column
    }

    pub fn row(&self) -> &str {
        &self.row
    }

    /// The AES-GCM associated data: `table.column/row`. Table and column names never contain `/`, so the first
    /// `/` separates them from the row whatever the row key holds.
    fn associated_data(&self) -> String {
        format!("{}/{}", self.column, self.row)
    }
}

impl std::fmt::Display for SecretSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} of row {}", self.column, self.row)
    }
}

/// The format of a sealed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedFormat {
    /// `v1`: bound to its column only.
    Unbound,
    /// `v2`: bound to its column and row.
    RowBound,
}

impl SealedFormat {
    pub fn of(sealed: &str) -> Option<Self> {
        match sealed.split('.').next() {
            Some(FORMAT_UNBOUND) => Some(SealedFormat::Unbound),
            Some(FORMAT_ROW_BOUND) => Some(SealedFormat::RowBound),
            _ => None,
        }
    }

    /// The prefix every value of this format starts with (`v2.`), for SQL `like` filters.
    pub fn prefix(self) -> &'static str {
        match self {
            SealedFormat::Unbound => "v1.",
            SealedFormat::RowBound => "v2.",
        }
    }
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
    /// a key file left by an interrupted rotation. A key file readable by group or others is refused unless
    /// `allow_readable_master_key_file` is set.
    pub fn load(config: &Config) -> Result<Self, SecretsError> {
        let allow_readable = config.allow_readable_master_key_file;
        let mut older = Vec::new();
        for previous in &config.master_key_previous {
            // Validated when the configuration was loaded.
            if let Ok(bytes) = decode_master_key(previous.expose_secret()) {
                older.push(bytes);
            }
        }
        let file = config.master_key_file();
        older.extend(read_older_key_files(&file, allow_readable)?);
        let current = match &config.master_key {
            Some(key) => decode_master_key(key.expose_secret())
                .map_err(|reason| SecretsError::BadKeyFile { path: "WXRISK_MASTER_KEY".into(), reason })?,
            None => load_or_create_key_file(&file, allow_readable)?,
        };
        if config.master_key.is_some() && file.exists() {
            // A key file from before the key moved into the configuration may have sealed rows.
            older.push(read_key_file(&file, allow_readable)?);
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

    /// Seal `plaintext` for `slot` under the current key.
    pub fn seal(&self, slot: &SecretSlot, plaintext: &[u8]) -> Result<String, SecretsError> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| SecretsError::Seal)?;
        let mut buffer = plaintext.to_vec();
        let aad = slot.associated_data();
        self.current
            .key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad.as_bytes()), &mut buffer)
            .map_err(|_| SecretsError::Seal)?;
        let mut packed = Vec::with_capacity(NONCE_LEN + buffer.len());
        packed.extend_from_slice(&nonce);
        packed.extend_from_slice(&buffer);
        Ok(format!("{FORMAT_ROW_BOUND}.{}.{}", self.current.id, URL_SAFE_NO_PAD.encode(packed)))
    }

    pub fn seal_str(&self, slot: &SecretSlot, plaintext: &SecretString) -> Result<String, SecretsError> {
        self.seal(slot, plaintext.expose_secret().as_bytes())
    }

    /// Open a value sealed for `slot`, with whichever configured key sealed it. A `v1` value is refused.
    pub fn open(&self, slot: &SecretSlot, sealed: &str) -> Result<secrecy::SecretBox<Vec<u8>>, SecretsError> {
        let corrupt = || SecretsError::Corrupt { slot: slot.to_string() };
        match SealedFormat::of(sealed) {
            Some(SealedFormat::RowBound) => {
                self.open_format(FORMAT_ROW_BOUND, &slot.associated_data(), sealed, corrupt)
            }
            Some(SealedFormat::Unbound) => Err(SecretsError::Unbound { slot: slot.to_string() }),
            None => Err(corrupt()),
        }
    }

    pub fn open_string(&self, slot: &SecretSlot, sealed: &str) -> Result<SecretString, SecretsError> {
        let bytes = self.open(slot, sealed)?;
        utf8(bytes, || SecretsError::Corrupt { slot: slot.to_string() })
    }

    /// Open a value in the old, row-unbound `v1` format (associated data `table.column`). Only the one-time move
    /// to row binding may call this (see the module docs).
    pub fn open_unbound_v1(&self, column: &str, sealed: &str) -> Result<secrecy::SecretBox<Vec<u8>>, SecretsError> {
        let corrupt = || SecretsError::Corrupt { slot: format!("{column} (v1)") };
        self.open_format(FORMAT_UNBOUND, column, sealed, corrupt)
    }

    fn open_format(
        &self,
        format: &str,
        associated_data: &str,
        sealed: &str,
        corrupt: impl Fn() -> SecretsError,
    ) -> Result<secrecy::SecretBox<Vec<u8>>, SecretsError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(version), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(corrupt());
        };
        if version != format {
            return Err(corrupt());
        }
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
        let plain_len = key
            .key
            .open_in_place(nonce, Aad::from(associated_data.as_bytes()), &mut buffer)
            .map_err(|_| corrupt())?
            .len();
        buffer.truncate(plain_len);
        Ok(secrecy::SecretBox::new(Box::new(buffer)))
    }

    /// Whether `sealed` is already row-bound under the current key (rotation skips it).
    pub fn is_current(&self, sealed: &str) -> bool {
        sealed.starts_with(&self.current_prefix())
    }

    /// `v2.<current key id>.`: the prefix of every value sealed now.
    pub fn current_prefix(&self) -> String {
        format!("{FORMAT_ROW_BOUND}.{}.", self.current.id)
    }
}

fn utf8(bytes: secrecy::SecretBox<Vec<u8>>, corrupt: impl Fn() -> SecretsError) -> Result<SecretString, SecretsError> {
    let text = std::str::from_utf8(bytes.expose_secret()).map_err(|_| corrupt())?;
    Ok(SecretString::from(text.to_owned()))
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

fn read_key_file(path: &Path, allow_readable: bool) -> Result<[u8; 32], SecretsError> {
    private_files::check_key_file_mode(path, allow_readable)?;
    let text =
        std::fs::read_to_string(path).map_err(|source| SecretsError::KeyFile { path: path.to_path_buf(), source })?;
    decode_master_key(&text).map_err(|reason| SecretsError::BadKeyFile { path: path.to_path_buf(), reason })
}

/// Read the key file, or create it (and its directory, 0700). Creation writes a temporary file and hard-links it
/// into place, so two processes starting at once agree on one key and nobody ever reads a half-written file.
fn load_or_create_key_file(path: &Path, allow_readable: bool) -> Result<[u8; 32], SecretsError> {
    let io_err = |source| SecretsError::KeyFile { path: path.to_path_buf(), source };
    if path.exists() {
        return read_key_file(path, allow_readable);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        private_files::create_private_dir_all(dir).map_err(io_err)?;
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
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key_file(path, allow_readable),
        Err(e) => Err(io_err(e)),
    }
}

/// Write a new file readable by its owner only.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    private_files::write_private_file(path, contents)
}

/// Path of the key a rotation is moving to (kept until the rotation has finished).
pub fn next_key_file(current: &Path) -> PathBuf {
    current.with_extension("key.next")
}

fn read_older_key_files(current: &Path, allow_readable: bool) -> Result<Vec<[u8; 32]>, SecretsError> {
    let mut keys = Vec::new();
    let next = next_key_file(current);
    if next.exists() {
        keys.push(read_key_file(&next, allow_readable)?);
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
            keys.push(read_key_file(&entry.path(), allow_readable)?);
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
pub fn load_or_create_next_key(current: &Path, allow_readable: bool) -> Result<[u8; 32], SecretsError> {
    let next = next_key_file(current);
    if next.exists() {
        return read_key_file(&next, allow_readable);
    }
    let key = generate_key()?;
    write_private_file(&next, format!("{}\n", encode_key(&key)).as_bytes())
        .map_err(|source| SecretsError::KeyFile { path: next.clone(), source })?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(row: i64) -> SecretSlot {
        SecretSlot::new("providers.apiv3_key_sealed", row)
    }

    /// A value in the old format, as the code before row binding wrote it.
    fn seal_v1(ring: &Keyring, column: &str, plaintext: &[u8]) -> String {
        let nonce = [9u8; NONCE_LEN];
        let mut buffer = plaintext.to_vec();
        ring.current
            .key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(column.as_bytes()), &mut buffer)
            .expect("seal");
        let mut packed = nonce.to_vec();
        packed.extend_from_slice(&buffer);
        format!("v1.{}.{}", ring.current_id(), URL_SAFE_NO_PAD.encode(packed))
    }

    #[test]
    fn seal_and_open() {
        let ring = Keyring::from_keys(&[7u8; 32], &[]);
        let sealed = ring.seal(&slot(1), b"0123456789abcdef0123456789abcdef").expect("seal");
        assert!(sealed.starts_with(&format!("v2.{}.", ring.current_id())));
        assert!(!sealed.contains("0123456789abcdef"));
        let opened = ring.open(&slot(1), &sealed).expect("open");
        assert_eq!(opened.expose_secret().as_slice(), b"0123456789abcdef0123456789abcdef");
        // Two seals of the same value differ (random nonce).
        assert_ne!(sealed, ring.seal(&slot(1), b"0123456789abcdef0123456789abcdef").expect("seal"));
    }

    #[test]
    fn column_and_row_are_bound() {
        let ring = Keyring::from_keys(&[7u8; 32], &[]);
        let sealed = ring.seal(&slot(1), b"x").expect("seal");
        let other_column = SecretSlot::new("channels.secrets_sealed", 1);
        assert!(matches!(ring.open(&other_column, &sealed), Err(SecretsError::Corrupt { .. })));
        let error = ring.open(&slot(2), &sealed).expect_err("another row");
        assert!(matches!(error, SecretsError::Corrupt { .. }));
        assert!(error.to_string().contains("providers.apiv3_key_sealed of row 2"), "{error}");
        // Row keys that are not numbers (an appid) and that contain the separator stay distinct.
        let keyed = SecretSlot::new("oa_tokens.access_token_sealed", "wx1/2");
        let sealed = ring.seal(&keyed, b"t").expect("seal");
        assert!(ring.open(&SecretSlot::new("oa_tokens.access_token_sealed", "wx1"), &sealed).is_err());
        assert!(ring.open(&keyed, &sealed).is_ok());
    }

    #[test]
    fn v1_values_open_only_through_the_move_to_row_binding() {
        let ring = Keyring::from_keys(&[7u8; 32], &[]);
        let old = seal_v1(&ring, "providers.apiv3_key_sealed", b"old secret");
        assert_eq!(SealedFormat::of(&old), Some(SealedFormat::Unbound));
        assert!(matches!(ring.open(&slot(1), &old), Err(SecretsError::Unbound { .. })));
        let opened = ring.open_unbound_v1("providers.apiv3_key_sealed", &old).expect("the move opens it");
        assert_eq!(opened.expose_secret().as_slice(), b"old secret");
        assert!(ring.open_unbound_v1("channels.secrets_sealed", &old).is_err(), "v1 stays column-bound");
        let row_bound = ring.seal(&slot(1), b"new").expect("seal");
        assert!(ring.open_unbound_v1("providers.apiv3_key_sealed", &row_bound).is_err(), "a v2 value is not v1");
        assert!(!ring.is_current(&old));
    }

    #[test]
    fn tampering_and_unknown_keys_fail() {
        let ring = Keyring::from_keys(&[7u8; 32], &[]);
        let sealed = ring.seal(&slot(1), b"secret").expect("seal");
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        assert!(matches!(ring.open(&slot(1), &tampered), Err(SecretsError::Corrupt { .. })));
        assert!(matches!(ring.open(&slot(1), "v2.deadbeef.AAAA"), Err(SecretsError::UnknownKey { .. })));
        assert!(matches!(ring.open(&slot(1), "plaintext"), Err(SecretsError::Corrupt { .. })));
        let short = format!("v2.{}.AA", ring.current_id());
        assert!(matches!(ring.open(&slot(1), &short), Err(SecretsError::Corrupt { .. })));
    }

    #[test]
    fn older_keys_open_but_do_not_seal() {
        let old = Keyring::from_keys(&[1u8; 32], &[]);
        let sealed = old.seal(&slot(1), b"secret").expect("seal");
        let rotated = Keyring::from_keys(&[2u8; 32], &[[1u8; 32]]);
        assert!(!rotated.is_current(&sealed));
        assert_eq!(rotated.open(&slot(1), &sealed).expect("open").expose_secret().as_slice(), b"secret");
        let resealed = rotated.seal(&slot(1), b"secret").expect("seal");
        assert!(rotated.is_current(&resealed));
        assert!(old.open(&slot(1), &resealed).is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("wxrisk-keyfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub").join("master.key");
        let first = load_or_create_key_file(&path, false).expect("create");
        let second = load_or_create_key_file(&path, false).expect("read");
        assert_eq!(first, second);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(&dir.join("sub")), 0o700, "a directory wxrisk creates is private");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            let error = load_or_create_key_file(&path, false).expect_err("readable key file");
            assert!(matches!(error, SecretsError::ReadableKeyFile(_)), "{error}");
            assert_eq!(load_or_create_key_file(&path, true).expect("allowed"), first);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
