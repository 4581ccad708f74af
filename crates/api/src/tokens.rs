//! API bearer tokens and the file that keeps them: `DATA_DIR/api-tokens`.
//!
//! Format: one `role token` pair per line (`admin`, `operator` or `read-only`); blank
//! lines and lines starting with `#` are ignored. The file is written whole (temporary
//! file, then rename) with mode 0600.
//!
//! Tokens are stored as they are, not hashed: no hash function is in the dependency
//! tree and a home-made one would be worse than none. What protects them is the file
//! mode (0600, and a warning at start if the file is readable by others) and the
//! comparison, which looks at every byte of every stored token whatever the input, so
//! response times do not tell an attacker how much of a guess was right.
//!
//! On first start an admin token is made (32 bytes from `/dev/urandom`, hex) and also
//! written to `DATA_DIR/admin.token` (0600), where the `bosun` CLI on the same host looks
//! for it when no `--token` is given.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};

use crate::auth::Role;

/// File name of the token list inside the data directory.
pub const TOKENS_FILE: &str = "api-tokens";
/// File name of the first admin token inside the data directory, for the local CLI.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
/// Random bytes per generated token (hex-encoded, so 64 characters).
const TOKEN_BYTES: usize = 32;
/// Shortest token accepted from the file: a hand-written `admin x` would be guessable.
const MIN_TOKEN_LEN: usize = 16;
/// Permission bits for both files: owner read/write only.
#[cfg(unix)]
const PRIVATE_MODE: u32 = 0o600;

/// Why the token file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A line of the token file is not `role token`.
    #[error("{}:{line}: {reason}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// One stored token.
struct Entry {
    /// What it may do.
    role: Role,
    /// The secret itself.
    token: String,
}

/// The set of valid tokens; shared by the API's handlers behind an `Arc`.
pub struct Tokens {
    /// Where to save new tokens; `None` keeps them in memory only (tests).
    file: Option<PathBuf>,
    /// The tokens, in file order.
    entries: RwLock<Vec<Entry>>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secrets.
        f.debug_struct("Tokens")
            .field("file", &self.file)
            .field("count", &self.read().len())
            .finish()
    }
}

impl Tokens {
    /// Loads `data_dir/api-tokens`, or creates it with one admin token on first start.
    ///
    /// Returns the new admin token when one was made (also written to
    /// `data_dir/admin.token`), so the caller can tell the operator where it is.
    pub fn open_or_init(data_dir: &Path) -> Result<(Tokens, Option<String>), TokenError> {
        let path = data_dir.join(TOKENS_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => {
                warn_if_readable_by_others(&path);
                let entries = parse(&path, &text)?;
                Ok((Tokens::with_entries(Some(path), entries), None))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(data_dir).map_err(io_error(data_dir))?;
                let tokens = Tokens::with_entries(Some(path), Vec::new());
                let admin = tokens.create(Role::Admin)?;
                let admin_path = data_dir.join(ADMIN_TOKEN_FILE);
                write_private(&admin_path, format!("{admin}\n").as_bytes())?;
                Ok((tokens, Some(admin)))
            }
            Err(e) => Err(TokenError::Io { path, source: e }),
        }
    }

    /// Tokens that are never written anywhere: for tests and throw-away hubs.
    pub fn in_memory() -> Tokens {
        Tokens::with_entries(None, Vec::new())
    }

    /// Makes a new random token with `role`, saves the file, and returns the token.
    pub fn create(&self, role: Role) -> Result<String, TokenError> {
        let token = random_token()?;
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        entries.push(Entry {
            role,
            token: token.clone(),
        });
        if let Some(path) = &self.file {
            if let Err(e) = write_private(path, render(&entries).as_bytes()) {
                entries.pop();
                return Err(e);
            }
        }
        Ok(token)
    }

    /// The role of `presented`, if it is a valid token.
    pub fn authenticate(&self, presented: &str) -> Option<Role> {
        let mut found = None;
        // No early exit: every stored token is compared in full, whatever matched.
        for entry in self.read().iter() {
            if constant_time_eq(entry.token.as_bytes(), presented.as_bytes()) {
                found = Some(entry.role);
            }
        }
        found
    }

    fn with_entries(file: Option<PathBuf>, entries: Vec<Entry>) -> Tokens {
        Tokens {
            file,
            entries: RwLock::new(entries),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Entry>> {
        self.entries.read().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Parses the token file.
fn parse(path: &Path, text: &str) -> Result<Vec<Entry>, TokenError> {
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let error = |reason: String| TokenError::Parse {
            path: path.to_owned(),
            line: index + 1,
            reason,
        };
        let mut words = line.split_whitespace();
        let (Some(role), Some(token), None) = (words.next(), words.next(), words.next()) else {
            return Err(error("expected `role token`".into()));
        };
        let role: Role = role.parse().map_err(error)?;
        if token.len() < MIN_TOKEN_LEN {
            return Err(error(format!(
                "token too short: at least {MIN_TOKEN_LEN} characters"
            )));
        }
        entries.push(Entry {
            role,
            token: token.to_owned(),
        });
    }
    Ok(entries)
}

/// The file's text for `entries`.
fn render(entries: &[Entry]) -> String {
    let mut text = String::from(
        "# bosun API tokens: `role token` per line; roles: admin, operator, read-only.\n\
         # Stored in clear: keep this file private (mode 0600).\n",
    );
    for entry in entries {
        text.push_str(&format!("{} {}\n", entry.role, entry.token));
    }
    text
}

/// Compares without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// A new token: [`TOKEN_BYTES`] bytes from the kernel's generator, hex-encoded.
fn random_token() -> Result<String, TokenError> {
    let path = Path::new("/dev/urandom");
    let mut bytes = [0u8; TOKEN_BYTES];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(io_error(path))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes `path` whole and private: a temporary file with mode 0600, then a rename, so
/// a crash leaves either the old or the new list, and no moment where it is readable.
fn write_private(path: &Path, contents: &[u8]) -> Result<(), TokenError> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, PRIVATE_MODE);
    let mut file = options.open(&tmp).map_err(io_error(&tmp))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(io_error(&tmp))?;
    fs::rename(&tmp, path).map_err(io_error(path))
}

/// Logs a warning when the token file can be read by group or others.
fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(path) {
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(
                    file = %path.display(),
                    mode = format!("{:o}", mode & 0o777),
                    "API token file is readable by other users; chmod 600 it"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> TokenError + '_ {
    move |source| TokenError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_start_creates_an_admin_token_and_later_starts_load_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (tokens, admin) = Tokens::open_or_init(dir.path()).expect("init");
        let admin = admin.expect("a new admin token");
        assert_eq!(admin.len(), 2 * TOKEN_BYTES);
        assert_eq!(tokens.authenticate(&admin), Some(Role::Admin));
        let local = fs::read_to_string(dir.path().join(ADMIN_TOKEN_FILE)).expect("admin.token");
        assert_eq!(local.trim(), admin);

        let operator = tokens.create(Role::Operator).expect("create");
        assert_ne!(operator, admin);

        let (again, none) = Tokens::open_or_init(dir.path()).expect("reopen");
        assert!(none.is_none(), "no second admin token");
        assert_eq!(again.authenticate(&admin), Some(Role::Admin));
        assert_eq!(again.authenticate(&operator), Some(Role::Operator));
        assert_eq!(again.authenticate("nope"), None);
        assert_eq!(again.authenticate(""), None);
        assert_eq!(again.authenticate(&admin[..admin.len() - 1]), None);
    }

    #[cfg(unix)]
    #[test]
    fn both_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let (tokens, _) = Tokens::open_or_init(dir.path()).expect("init");
        tokens.create(Role::ReadOnly).expect("create");
        for name in [TOKENS_FILE, ADMIN_TOKEN_FILE] {
            let mode = fs::metadata(dir.path().join(name))
                .expect("exists")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }

    #[test]
    fn file_format_errors_name_the_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(TOKENS_FILE);
        for (text, line) in [
            ("# c\n\nadmin\n", 3),
            ("superuser 0123456789abcdef0123\n", 1),
            ("admin short\n", 1),
            ("admin 0123456789abcdef0123 extra\n", 1),
        ] {
            fs::write(&path, text).expect("write");
            match Tokens::open_or_init(dir.path()) {
                Err(TokenError::Parse { line: got, .. }) => assert_eq!(got, line, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        fs::write(&path, "# hand-written\nread-only  0123456789abcdef0123\n\n").expect("write");
        let (tokens, _) = Tokens::open_or_init(dir.path()).expect("loads");
        assert_eq!(
            tokens.authenticate("0123456789abcdef0123"),
            Some(Role::ReadOnly)
        );
    }

    #[test]
    fn comparison_is_exact() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn debug_output_hides_tokens() {
        let tokens = Tokens::in_memory();
        let token = tokens.create(Role::Admin).expect("create");
        assert!(!format!("{tokens:?}").contains(&token));
    }
}
