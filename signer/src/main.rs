//! `loom-sign`: makes minisign key pairs and signs auth components with them,
//! so a Loom Auth host started with `--trusted-signers` runs only components
//! signed by a key it trusts. Signatures are standard minisign ones
//! (`minisign -Vm FILE -p KEY.pub` verifies them too).

use std::fs::{File, Permissions};
use std::io::{BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use minisign::{KeyPair, SecretKey, SecretKeyBox};

/// Make signing keys and sign Loom Auth components.
#[derive(Debug, Parser)]
#[command(name = "loom-sign", version, max_term_width = 100)]
#[command(after_help = "Examples:\n  loom-sign keygen --secret-key release.key --public-key release.pub\n  \
                        loom-sign sign --secret-key release.key target/components/auth-guest.wasm\n  \
                        host-server --trusted-signers release.pub")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make a new key pair: a secret key (mode 0600, not password-protected) and
    /// the public key to list in the host's --trusted-signers file.
    ///
    /// Refuses to overwrite an existing key. Example: loom-sign keygen --secret-key k.key --public-key k.pub
    Keygen {
        #[arg(long, value_name = "PATH")]
        secret_key: PathBuf,
        #[arg(long, value_name = "PATH")]
        public_key: PathBuf,
        /// Do nothing (successfully) when the secret key already exists.
        #[arg(long)]
        if_missing: bool,
    },
    /// Sign each FILE, writing FILE.minisig beside it.
    ///
    /// Example: loom-sign sign --secret-key k.key target/components/auth-guest.wasm
    Sign {
        #[arg(long, value_name = "PATH")]
        secret_key: PathBuf,
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Keygen { secret_key, public_key, if_missing } => keygen(&secret_key, &public_key, if_missing),
        Command::Sign { secret_key, files } => sign(&secret_key, &files),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn keygen(secret_path: &Path, public_path: &Path, if_missing: bool) -> anyhow::Result<()> {
    if secret_path.exists() {
        if if_missing {
            return Ok(());
        }
        bail!("{} exists already; remove it first to make a new key", secret_path.display());
    }
    let pair = KeyPair::generate_unencrypted_keypair().context("cannot generate a key pair")?;
    let secret = pair.sk.to_box(Some("loom-sign secret key")).context("cannot encode the secret key")?;
    let public = pair.pk.to_box().context("cannot encode the public key")?;
    for dir in [secret_path, public_path].iter().filter_map(|p| p.parent()).filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_atomic(public_path, public.to_string().as_bytes(), 0o644)?;
    write_atomic(secret_path, secret.to_string().as_bytes(), 0o600)?;
    eprintln!("Wrote {} (keep it secret) and {} (trust it)", secret_path.display(), public_path.display());
    Ok(())
}

fn sign(secret_path: &Path, files: &[PathBuf]) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(secret_path)
        .with_context(|| format!("cannot read the secret key {}", secret_path.display()))?;
    let secret: SecretKey = SecretKeyBox::from_string(&text)
        .and_then(SecretKeyBox::into_unencrypted_secret_key)
        .with_context(|| format!("{} is not an unencrypted minisign secret key", secret_path.display()))?;
    for file in files {
        let reader = BufReader::new(File::open(file).with_context(|| format!("cannot read {}", file.display()))?);
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let trusted = format!("file:{name}");
        let signature = minisign::sign(None, &secret, reader, Some(&trusted), Some("signed by loom-sign"))
            .with_context(|| format!("cannot sign {}", file.display()))?;
        let target = file.with_file_name(format!("{name}.minisig"));
        write_atomic(&target, signature.to_string().as_bytes(), 0o644)?;
    }
    Ok(())
}

/// Writes `contents` to a temporary file beside `path` with `mode`, syncs it,
/// renames it over `path` and syncs the directory: never half a key or signature.
fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let written = (|| {
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        file.as_file().set_permissions(Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.as_file().sync_all()?;
        file.persist(path).map_err(|e| e.error)?;
        File::open(dir)?.sync_all()
    })();
    written.with_context(|| format!("cannot write {}", path.display()))
}
