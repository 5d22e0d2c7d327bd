//! The operator interface (spec §7): `serve`, and offline commands that work on the data file
//! while no server holds it. Offline commands print the same JSON as the admin API.

mod csv;
mod export;
mod import;
mod progress;

use std::fs::File;
use std::io::BufWriter;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use serde_json::json;

use crate::admin_token::{self, AdminTokenSource};
use crate::config::{Config, ConfigError, Sources, parse_flag};
use crate::domain::catalog::Name;
use crate::domain::ids::{KeyId, TenantId};
use crate::domain::time::Clock;
use crate::domain::token::Pat;
use crate::dto::{KeyDto, TenantDto};
use crate::server::{self, Options};
use crate::store::api_keys::NewKey;
use crate::store::{OpenError, Store};

#[derive(Parser, Debug)]
#[command(
    name = "leadbase",
    version,
    about = "Self-hosted lead CRM API with signed webhooks"
)]
pub struct Cli {
    /// TOML config file; see config.example.toml.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Override one config key, e.g. --set storage.path=/var/lib/leadbase/leadbase.redb
    #[arg(long = "set", global = true, value_name = "SECTION.KEY=VALUE")]
    pub set: Vec<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (default: 127.0.0.1:8080, data in ./data/leadbase.redb).
    Serve {
        /// Address to listen on; overrides server.listen.
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Manage tenants (customers) offline.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage API keys offline.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage the admin token offline.
    #[command(subcommand, name = "admin-token")]
    AdminToken(AdminTokenCommand),
    /// Write a consistent snapshot of the whole data file to FILE: through the running server
    /// (`POST /admin/api/backup`, at server.listen, with the admin token) when one holds the
    /// file, else directly. The snapshot is a normal data file.
    Backup {
        /// Where to write it (a new file).
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
        /// The admin token, when neither admin.token nor <data dir>/admin-token has it.
        #[arg(long, env = "LEADBASE_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
    },
    /// Check the data file offline: redb's own integrity check, every record decodes, every
    /// index agrees with the records. Exit status 0 only when clean.
    Check {
        /// Rebuild the lead indexes from the lead records when they are damaged, then check
        /// again.
        #[arg(long)]
        repair: bool,
    },
    /// Write a tenant's leads to stdout or a file, offline, as the export route does.
    ///
    /// The bytes `GET /api/agents/crm/leads/export` gives for the same filters, oldest lead
    /// first.
    Export(export::ExportArgs),
    /// Read leads into a tenant, offline, from CSV or JSON lines in the export's shape.
    ///
    /// Each row goes by the bulk import's rules (created, or merged into the lead with its
    /// e-mail or phone), 500 rows per transaction, and keeps its status, score and qualified.
    /// Ids, created_at and interactions are not carried: the leads are new to this file.
    /// Progress goes to stderr, a JSON summary to stdout (failed rows with their line and
    /// reasons). Exit status 0 when every row was created, updated or skipped, 1 when one
    /// failed or the import could not run (a file that cannot be read, or is not CSV or JSON
    /// lines of leads, changes nothing), 2 for a wrong command line.
    Import(import::ImportArgs),
    /// Run a local webhook receiver that verifies signatures and prints each verified event.
    Receive {
        /// The webhook's signing secret (mega_whsec_...). Prefer the environment variable: an
        /// argument shows in `ps` to every local user.
        #[arg(long, env = "MEGA_WEBHOOK_SECRET", hide_env_values = true)]
        secret: String,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9000", value_name = "ADDR")]
        listen: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Create a tenant; prints {"tenant": {...}}.
    Create {
        #[arg(long)]
        name: String,
    },
    /// List tenants; prints {"tenants": [...]}.
    List,
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Issue a key; prints {"key": {...}, "token": "mega_..."}. The token is shown only here.
    Issue {
        #[arg(long, value_name = "TENANT_ID")]
        tenant: String,
        /// Comma-separated, e.g. public_api:leads:read,public_api:leads:write
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        #[arg(long, default_value = "cli")]
        name: String,
        /// ISO-8601 expiry time.
        #[arg(long, value_name = "TIME")]
        expires_at: Option<String>,
    },
    /// List a tenant's keys; prints {"keys": [...]}.
    List {
        #[arg(long, value_name = "TENANT_ID")]
        tenant: String,
    },
    /// Revoke a key; prints {"id": ..., "revoked": true}.
    Revoke { key_id: String },
}

#[derive(Subcommand, Debug)]
pub enum AdminTokenCommand {
    /// Generate a new admin token, write it to <data dir>/admin-token and print it.
    Reset,
}

/// Everything that ends a command with a message for the operator.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The command line asks for something that cannot be: nothing was read or written.
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
}

fn failed(e: impl std::fmt::Display) -> CliError {
    CliError::Failed(e.to_string())
}

impl Cli {
    /// Loads the configuration this command runs with: defaults < file < env < flags.
    pub fn load_config(&self) -> Result<Config, CliError> {
        let mut flags = self
            .set
            .iter()
            .map(|raw| parse_flag(raw))
            .collect::<Result<Vec<_>, _>>()?;
        if let Command::Serve {
            listen: Some(listen),
        } = &self.command
        {
            flags.push(("server.listen".into(), listen.clone()));
        }
        Ok(Config::load(&Sources::from_process(
            self.config.clone(),
            flags,
        ))?)
    }
}

pub fn run(command: Command, config: Config) -> Result<(), CliError> {
    match command {
        Command::Serve { .. } => serve(config),
        Command::Tenant(cmd) => offline(&config, |store| tenant(store, cmd)),
        Command::Key(cmd) => offline(&config, |store| key(store, cmd)),
        Command::Receive { secret, listen } => crate::receive::run(secret, &listen).map_err(failed),
        Command::Check { repair } => check(&config, repair),
        Command::Export(args) => export::export(&config, args),
        Command::Import(args) => import::import(&config, args),
        Command::Backup { to, admin_token } => backup(&config, &to, admin_token),
        Command::AdminToken(AdminTokenCommand::Reset) => offline(&config, |store| {
            let (_, path) = admin_token::reset(&config, store).map_err(failed)?;
            let token = std::fs::read_to_string(&path).map_err(failed)?;
            println!("{}", token.trim());
            eprintln!(
                "New admin token written to {}; restart the server for it to take effect.",
                path.display()
            );
            Ok(())
        }),
    }
}

fn serve(config: Config) -> Result<(), CliError> {
    let listen = config.server.listen;
    let listener =
        TcpListener::bind(listen).map_err(|e| failed(format!("cannot listen on {listen}: {e}")))?;
    let data = config.storage.path.display().to_string();
    let running = server::start(
        config,
        listener,
        Options {
            handle_signals: true,
            ..Options::default()
        },
    )
    .map_err(failed)?;
    let base = format!("http://{}", running.addr());
    println!(
        "leadbase {} listening on {base} (data: {data})",
        env!("CARGO_PKG_VERSION")
    );
    match running.admin_token() {
        AdminTokenSource::Config => {
            println!("Admin page: {base}/admin (admin token from admin.token)")
        }
        AdminTokenSource::File(path) => {
            println!(
                "Admin page: {base}/admin (admin token in {})",
                path.display()
            )
        }
        AdminTokenSource::Generated(path) => {
            println!(
                "Admin page: {base}/admin (admin token created in {}, mode 0600)",
                path.display()
            );
            println!(
                "First key: create a tenant and a key on the admin page (README.md, \"From first start to a first authenticated call\", has the same with curl)."
            );
        }
    }
    running.wait();
    Ok(())
}

/// `leadbase backup --to FILE`.
fn backup(config: &Config, to: &Path, token: Option<String>) -> Result<(), CliError> {
    if to.exists() {
        return Err(failed(format!(
            "{} exists; a backup writes a new file",
            to.display()
        )));
    }
    let started = std::time::Instant::now();
    // Opened once: a file a server holds answers `Locked`, and then the server makes the copy.
    match Store::open_with(
        &config.storage.path,
        Clock::default(),
        config.storage.cache_mb,
    ) {
        Ok(store) => {
            let summary = store.backup_to(to).map_err(failed);
            store.shutdown();
            let summary = summary?;
            print(json!({
                "backup": to.display().to_string(),
                "through": "the data file (no server held it)",
                "bytes": summary.bytes,
                "entries": summary.entries,
                "seconds": started.elapsed().as_secs_f64(),
            }));
            return Ok(());
        }
        Err(OpenError::Locked(_)) => {}
        Err(e) => return Err(failed(e)),
    }
    let token = match token.or_else(|| config.admin.token.clone()) {
        Some(token) => token,
        None => {
            let file = admin_token::token_file(config);
            std::fs::read_to_string(&file)
                .map(|t| t.trim().to_string())
                .map_err(|e| {
                    failed(format!(
                        "a server holds the data file; its admin token is needed: cannot read {} ({e}); pass --admin-token",
                        file.display()
                    ))
                })?
        }
    };
    let mut addr = config.server.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let url = format!("http://{addr}/admin/api/backup");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .post(&url)
        .header("authorization", &format!("Bearer {token}"))
        .send_empty()
        .map_err(|e| {
            failed(format!(
                "a server holds the data file, but {url} did not answer: {e}"
            ))
        })?;
    if response.status() != 200 {
        let body = response.body_mut().read_to_string().unwrap_or_default();
        return Err(failed(format!(
            "the server refused the backup ({}): {body}",
            response.status()
        )));
    }
    let expected: Option<u64> = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let n = write_new_file(to, |out| {
        let n = std::io::copy(&mut response.body_mut().as_reader(), out)
            .map_err(|e| failed(format!("cannot write {}: {e}", to.display())))?;
        match expected {
            Some(e) if e != n => Err(failed(format!(
                "the backup stream ended after {n} of {e} bytes; nothing was kept"
            ))),
            _ => Ok(n),
        }
    })?;
    print(json!({
        "backup": to.display().to_string(),
        "through": url,
        "bytes": n,
        "seconds": started.elapsed().as_secs_f64(),
    }));
    Ok(())
}

/// `leadbase check [--repair]`: prints what it read and every problem; fails unless the file
/// is clean at the end.
fn check(config: &Config, repair: bool) -> Result<(), CliError> {
    let path = &config.storage.path;
    if !path.exists() {
        return Err(failed(format!("no data file at {}", path.display())));
    }
    // redb's own check first, on the file alone (it also restores the allocator state of a
    // file that was not closed cleanly).
    match redb::Database::open(path) {
        Ok(mut db) => match db.check_integrity() {
            Ok(true) => println!("redb integrity check: passed"),
            Ok(false) => println!("redb integrity check: found damage and repaired it"),
            Err(e) => {
                return Err(failed(format!(
                    "redb integrity check failed, the file cannot be repaired: {e}"
                )));
            }
        },
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
            return Err(failed(format!(
                "{} is held by a running server; stop it (or take a backup and check that)",
                path.display()
            )));
        }
        Err(e) => return Err(failed(format!("cannot open {}: {e}", path.display()))),
    }
    offline(config, |store| {
        let started = std::time::Instant::now();
        let mut report = store.check().map_err(failed)?;
        print_report(&report);
        if !report.is_clean() && repair {
            if report.lead_indexes_damaged {
                let leads = store.repair_lead_indexes().map_err(failed)?;
                println!("repair: rebuilt the lead indexes from {leads} lead records");
                report = store.check().map_err(failed)?;
                print_report(&report);
            }
            if report.other_damage {
                println!(
                    "repair: the problems left are not in the lead indexes; restore them from a backup"
                );
            }
        }
        println!("took {:.1} s", started.elapsed().as_secs_f64());
        if report.is_clean() {
            println!("clean");
            Ok(())
        } else {
            Err(failed(format!(
                "{} problems found{}",
                report.problem_count(),
                if repair || !report.lead_indexes_damaged {
                    ""
                } else {
                    "; `leadbase check --repair` rebuilds the lead indexes"
                }
            )))
        }
    })
}

fn print_report(report: &crate::store::check::CheckReport) {
    for (what, n) in &report.checked {
        println!("checked {n} {what}");
    }
    for problem in &report.problems {
        println!("PROBLEM {problem}");
    }
    if report.unlisted > 0 {
        println!("... and {} more problems", report.unlisted);
    }
}

/// Opens the data file for a command that must not run beside a server.
fn offline(
    config: &Config,
    f: impl FnOnce(&Store) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let store = Store::open_with(
        &config.storage.path,
        Clock::default(),
        config.storage.cache_mb,
    )
    .map_err(failed)?;
    let result = f(&store);
    store.shutdown();
    result
}

fn print(value: serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(&value).unwrap_or_default()
    );
}

fn require_tenant(store: &Store, tenant: TenantId) -> Result<(), CliError> {
    match store.get_tenant(tenant).map_err(failed)? {
        Some(_) => Ok(()),
        None => Err(failed(format!("tenant {tenant} not found"))),
    }
}

fn tenant_arg(raw: &str) -> Result<TenantId, CliError> {
    TenantId::parse(raw)
        .ok_or_else(|| CliError::Usage(format!("`{raw}` is not a tenant id (a UUID)")))
}

fn tenant(store: &Store, cmd: TenantCommand) -> Result<(), CliError> {
    match cmd {
        TenantCommand::Create { name } => {
            let name = Name::parse("name", &name).map_err(failed)?;
            let tenant = store.create_tenant(name).map_err(failed)?;
            print(json!({ "tenant": TenantDto::from(&tenant) }));
        }
        TenantCommand::List => {
            let tenants = store.list_tenants().map_err(failed)?;
            let tenants: Vec<TenantDto> = tenants.iter().map(TenantDto::from).collect();
            print(json!({ "tenants": tenants }));
        }
    }
    Ok(())
}

fn key(store: &Store, cmd: KeyCommand) -> Result<(), CliError> {
    match cmd {
        KeyCommand::Issue {
            tenant,
            scopes,
            name,
            expires_at,
        } => {
            let tenant = tenant_arg(&tenant)?;
            let request = NewKey::parse(tenant, &name, &scopes, expires_at.as_deref(), store.now())
                .map_err(failed)?;
            let token = Pat::generate();
            let key = store.issue_key(request, &token).map_err(failed)?;
            print(json!({ "key": KeyDto::from(&key), "token": token.reveal() }));
        }
        KeyCommand::List { tenant } => {
            let tenant = tenant_arg(&tenant)?;
            require_tenant(store, tenant)?;
            let keys = store.list_keys(tenant).map_err(failed)?;
            let keys: Vec<KeyDto> = keys.iter().map(KeyDto::from).collect();
            print(json!({ "keys": keys }));
        }
        KeyCommand::Revoke { key_id } => {
            let id = KeyId::parse(&key_id)
                .ok_or_else(|| failed(format!("`{key_id}` is not a key id (a UUID)")))?;
            store.revoke_key(id).map_err(failed)?;
            print(json!({ "id": id, "revoked": true }));
        }
    }
    Ok(())
}

/// Writes `path` as a new file, mode 0600 (an export or a backup holds personal data), through
/// `FILE.part`: a failed write leaves no file, and none that appeared meanwhile is replaced.
pub(super) fn write_new_file<T>(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<T, CliError>,
) -> Result<T, CliError> {
    let mut part = path.as_os_str().to_os_string();
    part.push(".part");
    let part = PathBuf::from(part);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
        .open(&part)
        .map_err(|e| failed(format!("cannot create {}: {e}", part.display())))?;
    let mut out = BufWriter::with_capacity(64 * 1024, file);
    let written = write(&mut out).and_then(|value| {
        let file = out
            .into_inner()
            .map_err(|e| failed(format!("cannot write {}: {}", part.display(), e.error())))?;
        // A link, not a rename: it fails on a file that appeared at `path` meanwhile rather
        // than replacing it.
        file.sync_all()
            .and_then(|()| std::fs::hard_link(&part, path))
            .map_err(|e| failed(format!("cannot write {}: {e}", path.display())))?;
        Ok(value)
    });
    let _ = std::fs::remove_file(&part);
    written
}
