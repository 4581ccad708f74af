//! The hub's firmware store: verified images and their manifests, content-addressed,
//! and the publisher keys they must be signed with.
//!
//! Layout of its directory (`DATA_DIR/firmware/`):
//! - `{sha256}.bin`: an image, named by its SHA-256 (also its id in the API);
//! - `{sha256}.json`: its manifest, as uploaded (signature included);
//! - `keys.json`: the registered publisher public keys;
//! - `rollouts/`: the rollouts ([`Rollouts`]).
//!
//! Every write goes to a temporary file that is then renamed, so a crash leaves either
//! the old state or the new one; the manifest is renamed into place last, and only
//! images with a manifest are listed. Nothing is stored that does not verify against
//! a registered key. Blocking (`std::fs`): callers on an async runtime use
//! `spawn_blocking`.

use crate::presign::UrlSigner;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::key::{Algorithm, KeyError, PublicKey};
use crate::manifest::{Manifest, ManifestError, Sha256};
use crate::refusal::Refusal;
use crate::rollout::{RegistryError, Rollouts};
use crate::verify::verify_image;

/// File of the registered publisher keys.
const KEYS_FILE: &str = "keys.json";
/// Longest publisher key name, in bytes.
pub const MAX_KEY_NAME_LEN: usize = 64;

/// Why the store refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// The uploaded manifest is not valid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The upload does not verify (unsigned, unknown key, tampered, truncated…).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The publisher key is not a supported public key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A publisher key name that is empty, too long or not printable ASCII.
    #[error("key names are 1-{MAX_KEY_NAME_LEN} printable ASCII characters")]
    KeyName,
    /// No firmware or key with this id.
    #[error("no firmware or key {0}")]
    NotFound(String),
    /// The image is stored already with a different manifest.
    #[error("image {0} is stored already with a different manifest")]
    Conflict(String),
    /// The rollouts could not be loaded.
    #[error(transparent)]
    Rollouts(#[from] RegistryError),
}

/// A registered publisher key, as listed and as kept in `keys.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublisherKey {
    /// Its id ([`PublicKey::id`]), what manifests name.
    pub id: String,
    /// A name for people ("release-2026").
    pub name: String,
    /// Its algorithm.
    pub algorithm: Algorithm,
    /// The key, as a `PUBLIC KEY` PEM text.
    pub public_key: String,
}

/// A stored firmware image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Firmware {
    /// Its id: the image's SHA-256, hex.
    pub id: String,
    /// Its signed manifest.
    pub manifest: Manifest,
}

/// The firmware store; cheap to clone (all clones share one directory and key list).
#[derive(Clone)]
pub struct FirmwareStore {
    /// Its directory.
    dir: Arc<PathBuf>,
    /// The registered keys; the lock also serializes writes of `keys.json`.
    keys: Arc<Mutex<Vec<PublisherKey>>>,
    /// Serializes uploads, so two uploads of one image cannot both pass the
    /// "stored already?" check with different manifests.
    uploads: Arc<Mutex<()>>,
    /// The rollouts of these images.
    rollouts: Rollouts,
    /// Signs the per-device download URLs (secret in `url.key`).
    urls: UrlSigner,
}

/// Wraps an I/O error with its file.
fn io_at(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Numbers temporary files, so that concurrent writes never share one.
static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` through a temporary file, fsync and rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let seq = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("{}.{seq}.tmp", std::process::id()));
    let mut file = File::create(&tmp).map_err(io_at(&tmp))?;
    file.write_all(bytes).map_err(io_at(&tmp))?;
    file.sync_all().map_err(io_at(&tmp))?;
    fs::rename(&tmp, path).map_err(io_at(path))
}

impl FirmwareStore {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<FirmwareStore, StoreError> {
        fs::create_dir_all(dir).map_err(io_at(dir))?;
        let path = dir.join(KEYS_FILE);
        let keys = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Io {
                path: path.clone(),
                source: io::Error::new(io::ErrorKind::InvalidData, e),
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_at(&path)(e)),
        };
        let rollouts = Rollouts::open(&dir.join("rollouts"))?;
        let key_path = dir.join(crate::presign::URL_KEY_FILE);
        let urls = UrlSigner::open_or_create(dir).map_err(io_at(&key_path))?;
        Ok(FirmwareStore {
            rollouts,
            urls,
            dir: Arc::new(dir.to_owned()),
            keys: Arc::new(Mutex::new(keys)),
            uploads: Arc::new(Mutex::new(())),
        })
    }

    /// The rollouts of these images.
    pub fn rollouts(&self) -> &Rollouts {
        &self.rollouts
    }

    /// The signer of presigned download URLs (devices have no API token).
    pub fn url_signer(&self) -> &UrlSigner {
        &self.urls
    }

    /// The key list; a poisoned lock still holds a consistent list (it is replaced
    /// whole), so it is used anyway.
    fn lock_keys(&self) -> MutexGuard<'_, Vec<PublisherKey>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a publisher key (idempotent: the same key again is not an error; its
    /// name is updated).
    pub fn add_key(&self, name: &str, pem: &str) -> Result<PublisherKey, StoreError> {
        let good_name = !name.is_empty()
            && name.len() <= MAX_KEY_NAME_LEN
            && name.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
        if !good_name {
            return Err(StoreError::KeyName);
        }
        let key = PublicKey::from_pem(pem)?;
        let entry = PublisherKey {
            id: key.id(),
            name: name.to_owned(),
            algorithm: key.algorithm(),
            public_key: key.to_pem(),
        };
        let mut keys = self.lock_keys();
        let mut next = keys.clone();
        next.retain(|k| k.id != entry.id);
        next.push(entry.clone());
        self.save_keys(&next)?;
        *keys = next;
        Ok(entry)
    }

    /// Unregisters a key; images it signed stay stored.
    pub fn remove_key(&self, id: &str) -> Result<(), StoreError> {
        let mut keys = self.lock_keys();
        let mut next = keys.clone();
        next.retain(|k| k.id != id);
        if next.len() == keys.len() {
            return Err(StoreError::NotFound(id.to_owned()));
        }
        self.save_keys(&next)?;
        *keys = next;
        Ok(())
    }

    /// The registered keys, oldest first.
    pub fn keys(&self) -> Vec<PublisherKey> {
        self.lock_keys().clone()
    }

    /// Writes `keys.json`.
    fn save_keys(&self, keys: &[PublisherKey]) -> Result<(), StoreError> {
        let json = serde_json::to_vec_pretty(keys).unwrap_or_default();
        write_atomically(&self.dir.join(KEYS_FILE), &json)
    }

    /// The registered keys, parsed, to verify with.
    fn trusted(&self) -> Vec<PublicKey> {
        self.lock_keys()
            .iter()
            .filter_map(|k| PublicKey::from_pem(&k.public_key).ok())
            .collect()
    }

    /// Verifies and stores an image with its manifest: the manifest must be signed by a
    /// registered key, and the image must have its size and SHA-256. Storing the same
    /// image with the same manifest again is not an error.
    pub fn upload(&self, manifest_json: &[u8], image: &[u8]) -> Result<Firmware, StoreError> {
        let manifest = Manifest::from_json(manifest_json)?;
        verify_image(&manifest, image, &self.trusted())?;
        let id = manifest.sha256.to_hex();
        let manifest_path = self.dir.join(format!("{id}.json"));
        let _one_at_a_time = self.uploads.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(existing) = self.manifest(&id) {
            if existing != manifest {
                return Err(StoreError::Conflict(id));
            }
            return Ok(Firmware { id, manifest });
        }
        write_atomically(&self.dir.join(format!("{id}.bin")), image)?;
        write_atomically(&manifest_path, manifest.to_json().as_bytes())?;
        Ok(Firmware { id, manifest })
    }

    /// The manifest of a stored image.
    pub fn manifest(&self, id: &str) -> Result<Manifest, StoreError> {
        let sha = Sha256::from_hex(id).ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
        let path = self.dir.join(format!("{}.json", sha.to_hex()));
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(id.to_owned()))
            }
            Err(e) => return Err(io_at(&path)(e)),
        };
        Ok(Manifest::from_json(&bytes)?)
    }

    /// Every stored image, by version (newest first), then id.
    pub fn list(&self) -> Result<Vec<Firmware>, StoreError> {
        let entries = fs::read_dir(self.dir.as_ref()).map_err(io_at(&self.dir))?;
        let mut out = Vec::new();
        for entry in entries {
            let name = entry.map_err(io_at(&self.dir))?.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if let Ok(manifest) = self.manifest(id) {
                out.push(Firmware {
                    id: id.to_owned(),
                    manifest,
                });
            }
        }
        out.sort_by(|a, b| {
            (b.manifest.version.cmp(&a.manifest.version)).then_with(|| a.id.cmp(&b.id))
        });
        Ok(out)
    }

    /// Opens a stored image for reading, with its length.
    pub fn open_image(&self, id: &str) -> Result<(File, u64), StoreError> {
        let manifest = self.manifest(id)?;
        let path = self.dir.join(format!("{}.bin", manifest.sha256.to_hex()));
        let file = File::open(&path).map_err(io_at(&path))?;
        let len = file.metadata().map_err(io_at(&path))?.len();
        Ok((file, len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{ed_key, signed};
    use std::io::Read;

    fn store() -> (tempfile::TempDir, FirmwareStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FirmwareStore::open(&dir.path().join("firmware")).expect("open");
        (dir, store)
    }

    #[test]
    fn stores_verified_images_by_hash_and_keeps_keys_across_reopen() {
        let (dir, store) = store();
        let key = ed_key();
        let added = store
            .add_key("release", &key.public_key().to_pem())
            .expect("add key");
        assert_eq!(added.id, key.public_key().id());
        let image = b"the image".to_vec();
        let m = signed(&key, &image, "1.0.0");
        let fw = store
            .upload(m.to_json().as_bytes(), &image)
            .expect("upload");
        assert_eq!(fw.id, m.sha256.to_hex());
        // Idempotent.
        assert_eq!(
            store.upload(m.to_json().as_bytes(), &image).expect("again"),
            fw
        );

        let reopened = FirmwareStore::open(&dir.path().join("firmware")).expect("reopen");
        assert_eq!(reopened.keys(), vec![added]);
        assert_eq!(reopened.list().expect("list"), vec![fw.clone()]);
        let (mut file, len) = reopened.open_image(&fw.id).expect("image");
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).expect("read");
        assert_eq!((bytes, len), (image, 9));
    }

    #[test]
    fn refuses_unsigned_unknown_key_and_tampered() {
        let (_dir, store) = store();
        let key = ed_key();
        let image = b"the image".to_vec();
        let m = signed(&key, &image, "1.0.0");
        let unknown = store.upload(m.to_json().as_bytes(), &image);
        assert!(matches!(
            unknown,
            Err(StoreError::Refused(Refusal::UnknownKey { .. }))
        ));
        store
            .add_key("k", &key.public_key().to_pem())
            .expect("add key");
        let mut unsigned = m.clone();
        unsigned.signature = None;
        assert!(matches!(
            store.upload(unsigned.to_json().as_bytes(), &image),
            Err(StoreError::Refused(Refusal::Unsigned))
        ));
        assert!(matches!(
            store.upload(m.to_json().as_bytes(), b"the imagE"),
            Err(StoreError::Refused(Refusal::HashMismatch { .. }))
        ));
        assert!(matches!(
            store.upload(b"{", &image),
            Err(StoreError::Manifest(_))
        ));
        assert_eq!(store.list().expect("list"), vec![]);
    }

    #[test]
    fn conflicting_manifest_for_a_stored_image_is_refused() {
        let (_dir, store) = store();
        let key = ed_key();
        store
            .add_key("k", &key.public_key().to_pem())
            .expect("add key");
        let image = b"img".to_vec();
        store
            .upload(signed(&key, &image, "1.0.0").to_json().as_bytes(), &image)
            .expect("first");
        let other = signed(&key, &image, "1.0.1");
        assert!(matches!(
            store.upload(other.to_json().as_bytes(), &image),
            Err(StoreError::Conflict(_))
        ));
    }

    #[test]
    fn key_management_errors() {
        let (_dir, store) = store();
        assert!(matches!(store.add_key("", "x"), Err(StoreError::KeyName)));
        assert!(matches!(
            store.add_key("k", "not pem"),
            Err(StoreError::Key(_))
        ));
        assert!(matches!(
            store.remove_key("00"),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store.manifest("../../etc/passwd"),
            Err(StoreError::NotFound(_))
        ));
        let key = ed_key().public_key();
        store.add_key("k", &key.to_pem()).expect("add");
        store.remove_key(&key.id()).expect("remove");
        assert!(store.keys().is_empty());
    }
}
