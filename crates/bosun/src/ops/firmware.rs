//! `bosun firmware …`: signed firmware for over-the-air updates.
//!
//! Two halves. `keygen`, `sign` and `verify` work on files only, offline: the publisher
//! signs where its private key lives, and the hub never sees that key. `upload`, `list`
//! and `keys` talk to the hub's REST API, which verifies every upload against the
//! publisher keys an admin registered. Manifests, signatures and every check are
//! `ota`'s (see docs/ota.md).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use ota::{Algorithm, Manifest, PublicKey, SigningKey, Version};
use serde_json::{json, Value};

use super::api::{print_json, segment, Api, ApiArgs, Output};
use super::table::{fields, text, Table};

/// How long an upload may take (images up to 32 MiB over slow links).
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// `bosun firmware --help` epilogue.
pub(crate) const EXAMPLES: &str = "\
Examples:
  bosun firmware keygen --out release                 # release.key (keep it safe), release.pub
  bosun firmware keys add --name release --file release.pub
  bosun firmware sign --key release.key --file fw.bin --version 1.4.0 --hw sensor-v2
  bosun firmware verify --manifest fw.bin.manifest.json --file fw.bin --pubkey release.pub
  bosun firmware upload --manifest fw.bin.manifest.json --file fw.bin
  bosun firmware list

keygen, sign and verify are offline (files only); the others call the hub's API.";

/// `bosun firmware …`.
#[derive(Debug, Args)]
pub(crate) struct FirmwareArgs {
    /// Where the API is and how to print (for the verbs that call it).
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: FirmwareCommand,
}

/// The firmware verbs.
#[derive(Debug, Subcommand)]
pub(crate) enum FirmwareCommand {
    /// Make a publisher key pair: PREFIX.key (PKCS#8, mode 0600) and PREFIX.pub.
    #[command(after_help = EXAMPLES)]
    Keygen(KeygenArgs),
    /// Sign an image offline: writes its manifest (version, hardware, size, SHA-256).
    #[command(after_help = EXAMPLES)]
    Sign(SignArgs),
    /// Check an image and its manifest against a public key, as a device would.
    #[command(after_help = EXAMPLES)]
    Verify(VerifyArgs),
    /// Upload a signed image to the hub (refused unless it verifies there).
    #[command(after_help = EXAMPLES)]
    Upload(UploadArgs),
    /// List the images the hub stores.
    #[command(after_help = EXAMPLES)]
    List,
    /// Publisher keys registered on the hub.
    #[command(after_help = EXAMPLES)]
    Keys(KeysArgs),
}

/// Key algorithms on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum KeyAlgorithm {
    /// Ed25519 (default).
    Ed25519,
    /// ECDSA P-256 / SHA-256 (MCUboot-style bootloaders).
    EcdsaP256,
}

/// `firmware keygen`.
#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// Path prefix of the two files written (existing files are never overwritten).
    #[arg(long, value_name = "PREFIX")]
    pub(crate) out: PathBuf,
    /// Signature algorithm.
    #[arg(long, value_name = "ALG", default_value = "ed25519")]
    pub(crate) algorithm: KeyAlgorithm,
}

/// `firmware sign`.
#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// The private key (PKCS#8 PEM, from `keygen` or `openssl genpkey`).
    #[arg(long, value_name = "FILE")]
    pub(crate) key: PathBuf,
    /// The image.
    #[arg(long, value_name = "FILE")]
    pub(crate) file: PathBuf,
    /// Its semantic version, e.g. 1.4.0 or 2.0.0-rc.1.
    #[arg(long, value_name = "SEMVER")]
    pub(crate) version: String,
    /// A hardware id it runs on (repeat for several).
    #[arg(long, value_name = "HW", required = true)]
    pub(crate) hw: Vec<String>,
    /// Oldest version that may update to it.
    #[arg(long, value_name = "SEMVER")]
    pub(crate) min_from: Option<String>,
    /// Let devices running a newer (or the same) version install it.
    #[arg(long)]
    pub(crate) allow_downgrade: bool,
    /// Where to write the manifest [default: FILE.manifest.json].
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
}

/// `firmware verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The manifest.
    #[arg(long, value_name = "FILE")]
    pub(crate) manifest: PathBuf,
    /// The image.
    #[arg(long, value_name = "FILE")]
    pub(crate) file: PathBuf,
    /// A trusted public key (PEM; repeat for several).
    #[arg(long, value_name = "FILE", required = true)]
    pub(crate) pubkey: Vec<PathBuf>,
    /// Also check as a device running this version would (downgrade, minFrom).
    #[arg(long, value_name = "SEMVER", requires = "hw")]
    pub(crate) current: Option<String>,
    /// With --current: the device's hardware id.
    #[arg(long, value_name = "HW", requires = "current")]
    pub(crate) hw: Option<String>,
}

/// `firmware upload`.
#[derive(Debug, Args)]
pub(crate) struct UploadArgs {
    /// The signed manifest.
    #[arg(long, value_name = "FILE")]
    pub(crate) manifest: PathBuf,
    /// The image.
    #[arg(long, value_name = "FILE")]
    pub(crate) file: PathBuf,
}

/// `firmware keys …`.
#[derive(Debug, Args)]
pub(crate) struct KeysArgs {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: KeysCommand,
}

/// The publisher key verbs.
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Register a public key uploads may be signed with (admin).
    #[command(after_help = EXAMPLES)]
    Add {
        /// A name for people.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// The public key (PEM).
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// List registered keys.
    #[command(after_help = EXAMPLES)]
    List,
    /// Unregister a key (admin); images it signed stay.
    #[command(after_help = EXAMPLES)]
    Remove {
        /// Key id.
        #[arg(value_name = "ID")]
        id: String,
    },
}

/// Runs `bosun firmware …`.
pub(crate) fn run(args: &FirmwareArgs) -> Result<()> {
    let output = args.api.output;
    match &args.command {
        FirmwareCommand::Keygen(a) => keygen(a),
        FirmwareCommand::Sign(a) => sign(a),
        FirmwareCommand::Verify(a) => verify(a),
        FirmwareCommand::Upload(a) => {
            let api = Api::from_args(&args.api)?.with_timeout(UPLOAD_TIMEOUT);
            upload(&api, a, output)
        }
        FirmwareCommand::List => {
            let list = Api::from_args(&args.api)?.get("/api/firmware")?;
            print_items(&list, output, firmware_table)
        }
        FirmwareCommand::Keys(keys) => run_keys(&Api::from_args(&args.api)?, keys, output),
    }
}

/// Reads a text file with its name in the error.
fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Reads a binary file with its name in the error.
fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Writes a new file (never replacing one), private to its owner when `private`.
fn write_new(path: &Path, text: &str, private: bool) -> Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// `PREFIX` + `.ext`.
fn with_suffix(prefix: &Path, ext: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(ext);
    PathBuf::from(name)
}

fn keygen(args: &KeygenArgs) -> Result<()> {
    let algorithm = match args.algorithm {
        KeyAlgorithm::Ed25519 => Algorithm::Ed25519,
        KeyAlgorithm::EcdsaP256 => Algorithm::EcdsaP256Sha256,
    };
    let key = SigningKey::generate(algorithm)?;
    let (private, public) = (
        with_suffix(&args.out, ".key"),
        with_suffix(&args.out, ".pub"),
    );
    if public.exists() {
        bail!("{} exists; not overwriting it", public.display());
    }
    write_new(&private, &key.to_pem(), true)?;
    write_new(&public, &key.public_key().to_pem(), false)?;
    super::emit(&fields(&[
        ("key id", key.public_key().id()),
        ("algorithm", algorithm.to_string()),
        ("private key", private.display().to_string()),
        ("public key", public.display().to_string()),
    ]))
}

fn parse_version(text: &str) -> Result<Version> {
    Ok(Version::parse(text)?)
}

fn sign(args: &SignArgs) -> Result<()> {
    let key = SigningKey::from_pem(&read_text(&args.key)?)
        .with_context(|| format!("{}", args.key.display()))?;
    let image = read_bytes(&args.file)?;
    let mut manifest = Manifest::describe(&image, parse_version(&args.version)?, args.hw.clone());
    manifest.min_from = args.min_from.as_deref().map(parse_version).transpose()?;
    manifest.allow_downgrade = args.allow_downgrade;
    // Check the shape (hardware ids) before signing, as the hub will.
    Manifest::from_json(manifest.to_json().as_bytes())?;
    let manifest = manifest.sign(&key)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| with_suffix(&args.file, ".manifest.json"));
    std::fs::write(&out, manifest.to_json() + "\n")
        .with_context(|| format!("cannot write {}", out.display()))?;
    super::emit(&fields(&[
        ("manifest", out.display().to_string()),
        ("version", manifest.version.to_string()),
        ("size", manifest.size.to_string()),
        ("sha256", manifest.sha256.to_hex()),
        ("key id", key.public_key().id()),
    ]))
}

fn verify(args: &VerifyArgs) -> Result<()> {
    let manifest = Manifest::from_json(&read_bytes(&args.manifest)?)?;
    let mut trusted = Vec::new();
    for path in &args.pubkey {
        let key = PublicKey::from_pem(&read_text(path)?)
            .with_context(|| format!("{}", path.display()))?;
        trusted.push(key);
    }
    let image = read_bytes(&args.file)?;
    let key = ota::verify_image(&manifest, &image, &trusted).context("refused")?;
    if let (Some(current), Some(hw)) = (&args.current, &args.hw) {
        ota::check_update(&manifest, &parse_version(current)?, hw).context("refused")?;
    }
    super::emit(&fields(&[
        ("ok", format!("{} verifies", args.file.display())),
        ("version", manifest.version.to_string()),
        ("signed by", format!("{} ({})", key.id(), key.algorithm())),
    ]))
}

fn upload(api: &Api, args: &UploadArgs, output: Output) -> Result<()> {
    let manifest: Value = serde_json::from_slice(&read_bytes(&args.manifest)?)
        .with_context(|| format!("{} is not JSON", args.manifest.display()))?;
    let image = read_bytes(&args.file)?;
    let body = json!({ "manifest": manifest, "image": hub::base64::encode(&image) });
    let reply = api.call("POST", "/api/firmware", Some(&body), &[])?;
    match output {
        Output::Json => print_json(&reply.json),
        Output::Table => super::emit(&format!("uploaded {}\n", text(&reply.json, "id"))),
    }
}

fn run_keys(api: &Api, args: &KeysArgs, output: Output) -> Result<()> {
    match &args.command {
        KeysCommand::Add { name, file } => {
            let body = json!({ "name": name, "publicKey": read_text(file)? });
            let reply = api.call("POST", "/api/firmware/keys", Some(&body), &[])?;
            match output {
                Output::Json => print_json(&reply.json),
                Output::Table => super::emit(&format!(
                    "registered {} ({})\n",
                    text(&reply.json, "id"),
                    text(&reply.json, "algorithm")
                )),
            }
        }
        KeysCommand::List => {
            let list = api.get("/api/firmware/keys")?;
            print_items(&list, output, key_table)
        }
        KeysCommand::Remove { id } => {
            api.call(
                "DELETE",
                &format!("/api/firmware/keys/{}", segment(id)),
                None,
                &[],
            )?;
            if output == Output::Table {
                super::emit(&format!("removed {}\n", super::table::sanitize(id)))?;
            }
            Ok(())
        }
    }
}

/// Prints a `{items}` answer as JSON or as a table.
fn print_items(list: &Value, output: Output, table: fn(&[Value]) -> Table) -> Result<()> {
    match output {
        Output::Json => print_json(list),
        Output::Table => {
            let items = list["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            super::emit(&table(items).render())
        }
    }
}

fn firmware_table(items: &[Value]) -> Table {
    let mut table = Table::new(&["VERSION", "HW", "SIZE", "KEY", "ID"]);
    for item in items {
        let m = &item["manifest"];
        let hw: Vec<&str> = m["hw"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        table.push(vec![
            text(m, "version"),
            hw.join(","),
            super::table::cell(&m["size"]),
            text(&m["signature"], "keyId"),
            text(item, "id"),
        ]);
    }
    table
}

fn key_table(items: &[Value]) -> Table {
    let mut table = Table::new(&["ID", "NAME", "ALGORITHM"]);
    for item in items {
        table.push(vec![
            text(item, "id"),
            text(item, "name"),
            text(item, "algorithm"),
        ]);
    }
    table
}
