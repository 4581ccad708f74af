//! `bosun ca …`: the built-in device CA, registered device CAs and revocation.
//!
//! Unlike the other operator commands these work on the data directory directly, not
//! through the REST API: they need the CA's private key, which never leaves the machine
//! (and the root's, with `--root-out`, not even the data directory). A running server
//! notices the changed files within two seconds and rebuilds its client certificate
//! verifier. The files and their layout are `broker::device_ca`'s
//! (see docs/security.md, "Device certificates").

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use broker::device_ca;
use clap::{Args, Subcommand};

/// `bosun ca --help` epilogue.
pub(crate) const EXAMPLES: &str = "\
Examples:
  bosun ca init --root-out /media/offline/root.key   # root key kept off the server
  bosun ca issue-device --id dev-1 --out-dir .       # dev-1.pem and dev-1.key
  bosun ca issue-device --csr dev-c.csr --out dev-c.pem
  bosun ca import --name acme --cert acme-ca.pem     # trust a manufacturer's CA
  bosun ca revoke --serial 4f3a…                     # refused from the next handshake
  bosun ca import-crl acme.crl.pem
  bosun ca list

These commands work on DATA_DIR (default ./bosun-data) directly; a running
`bosun serve` picks the changes up within a second.";

/// `bosun ca …`.
#[derive(Debug, Args)]
pub(crate) struct CaArgs {
    /// Hub data directory [default: ./bosun-data].
    #[arg(long, value_name = "DIR", global = true)]
    pub(crate) data_dir: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: CaCommand,
}

/// The CA verbs.
#[derive(Debug, Subcommand)]
pub(crate) enum CaCommand {
    /// Create the built-in root and device CA (ECDSA P-256) and register the latter.
    #[command(
        after_help = "Examples:\n  bosun ca init\n  bosun ca init --root-out /media/offline/bosun-root.key"
    )]
    Init {
        /// Write the root CA's key here instead of DATA_DIR/ca/root.key (keep it
        /// offline; it is only needed to make a new intermediate).
        #[arg(long, value_name = "PATH")]
        root_out: Option<PathBuf>,
    },
    /// Register an external device CA (e.g. a manufacturer's) from a PEM file.
    #[command(after_help = "Examples:\n  bosun ca import --name acme --cert acme-device-ca.pem")]
    Import {
        /// Name to register it under (letters, digits, - _ .).
        #[arg(long, value_name = "NAME")]
        name: String,
        /// The CA certificate(s), PEM.
        #[arg(long, value_name = "PEM")]
        cert: PathBuf,
    },
    /// Issue a device certificate: with a new key (--id, --out-dir) or for a
    /// device-generated request (--csr, --out). Makes the built-in CA first if there is
    /// none.
    #[command(
        after_help = "Examples:\n  bosun ca issue-device --id dev-1 --out-dir .\n  bosun ca issue-device --id dev-1 --days 30\n  bosun ca issue-device --csr dev-c.csr --out dev-c.pem"
    )]
    IssueDevice(IssueArgs),
    /// List the registered device CAs.
    #[command(after_help = "Examples:\n  bosun ca list")]
    List,
    /// Revoke a certificate by serial number (hex, as `openssl x509 -serial` prints it).
    #[command(
        after_help = "Examples:\n  bosun ca revoke --serial 4F3A09…\n  bosun ca revoke --serial \"$(openssl x509 -in dev-1.pem -noout -serial | cut -d= -f2)\""
    )]
    Revoke {
        /// The serial number.
        #[arg(long, value_name = "HEX")]
        serial: String,
    },
    /// Import a certificate revocation list (PEM) published by a registered CA.
    #[command(after_help = "Examples:\n  bosun ca import-crl acme.crl.pem")]
    ImportCrl {
        /// The CRL file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// `ca issue-device`.
#[derive(Debug, Args)]
pub(crate) struct IssueArgs {
    /// Device id: the certificate's subject CN.
    #[arg(
        long,
        value_name = "ID",
        conflicts_with = "csr",
        required_unless_present = "csr"
    )]
    pub(crate) id: Option<String>,
    /// Directory for ID.pem and ID.key (mode 0600) [default: .].
    #[arg(long, value_name = "DIR", conflicts_with = "csr")]
    pub(crate) out_dir: Option<PathBuf>,
    /// A PEM certificate request made on the device (ECDSA P-256); its subject CN is
    /// the device id.
    #[arg(long, value_name = "FILE.pem")]
    pub(crate) csr: Option<PathBuf>,
    /// Where to write the certificate for --csr [default: CN.pem].
    #[arg(long, value_name = "FILE", requires = "csr")]
    pub(crate) out: Option<PathBuf>,
    /// Days the certificate is valid (0: it expires at once, for testing refusals).
    #[arg(long, value_name = "N", default_value_t = device_ca::DEFAULT_DEVICE_DAYS)]
    pub(crate) days: u32,
}

/// Runs `bosun ca …`.
pub(crate) fn run(args: &CaArgs) -> Result<()> {
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    match &args.command {
        CaCommand::Init { root_out } => {
            let made = device_ca::init(&data_dir, root_out.as_deref())?;
            super::emit(&format!(
                "root CA:   {}\nroot key:  {}\ndevice CA: {} (registered as {:?})\n",
                made.root_cert.display(),
                made.root_key.display(),
                made.issuing_cert.display(),
                device_ca::BUILT_IN_NAME,
            ))
        }
        CaCommand::Import { name, cert } => {
            let path = device_ca::import(&data_dir, name, cert)?;
            super::emit(&format!("registered {name}: {}\n", path.display()))
        }
        CaCommand::IssueDevice(issue) => run_issue(&data_dir, issue),
        CaCommand::List => {
            let mut text = String::new();
            for ca in device_ca::list(&data_dir)? {
                text.push_str(&format!(
                    "{}\t{}\t{}\n",
                    ca.name,
                    ca.subjects.join(", "),
                    ca.path.display()
                ));
            }
            super::emit(&text)
        }
        CaCommand::Revoke { serial } => {
            let serial = device_ca::revoke(&data_dir, serial)?;
            super::emit(&format!("revoked {serial}\n"))
        }
        CaCommand::ImportCrl { file } => {
            let path = device_ca::import_crl(&data_dir, file)?;
            super::emit(&format!("imported {}\n", path.display()))
        }
    }
}

/// Where `bosun serve` keeps its data unless told otherwise.
const DEFAULT_DATA_DIR: &str = "./bosun-data";

/// A device id as the registry accepts it: 1–128 of A–Z a–z 0–9 - . % _ * ? ! ( ) , : = @ $ '
/// (checked here too, so no certificate is issued for an id no device can have).
fn valid_device_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.%_*?!(),:=@$'".contains(c))
}

fn run_issue(data_dir: &Path, issue: &IssueArgs) -> Result<()> {
    // The first certificate makes the built-in CA if there is none (root key in the data
    // directory; `bosun ca init --root-out` first to keep it offline). Only in an
    // existing data directory, so a mistyped --data-dir does not grow a CA of its own.
    let ca_dir = device_ca::dir(data_dir);
    if !ca_dir.join(device_ca::ISSUING_KEY).exists() {
        if !data_dir.join("control.db").exists() {
            bail!(
                "{} is not a bosun data directory (no control.db); pass --data-dir",
                data_dir.display()
            );
        }
        let made = device_ca::init(data_dir, None)?;
        eprintln!(
            "created the built-in device CA ({}); its root key is {} (for production, \
             run `bosun ca init --root-out PATH` first to keep it offline)",
            made.issuing_cert.display(),
            made.root_key.display()
        );
    }
    let (issued, cert, key) = match (&issue.id, &issue.csr) {
        (Some(id), None) => {
            if !valid_device_id(id) {
                bail!("{id:?} is not a valid device id");
            }
            let dir = issue.out_dir.clone().unwrap_or_else(|| PathBuf::from("."));
            let issued = device_ca::issue_device(data_dir, id, issue.days)?;
            (
                issued,
                dir.join(format!("{id}.pem")),
                Some(dir.join(format!("{id}.key"))),
            )
        }
        (None, Some(csr)) => {
            let issued = device_ca::sign_csr(data_dir, csr, issue.days)?;
            if !valid_device_id(&issued.common_name) {
                bail!(
                    "the request's CN {:?} is not a valid device id",
                    issued.common_name
                );
            }
            let out = issue
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("{}.pem", issued.common_name)));
            (issued, out, None)
        }
        _ => bail!("give either --id or --csr"),
    };
    device_ca::write_issued(&issued, &cert, key.as_deref())
        .with_context(|| format!("cannot write {}", cert.display()))?;
    let mut text = format!(
        "device:      {}\nserial:      {}\ncertificate: {}\n",
        issued.common_name,
        issued.serial,
        cert.display()
    );
    if let Some(key) = key {
        text.push_str(&format!("key:         {}\n", key.display()));
    }
    super::emit(&text)
}
