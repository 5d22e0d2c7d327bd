//! The operator interface (spec §7): `serve`, and offline commands that work on the data file
//! while no server holds it. Offline commands print the same JSON as the admin API.

use std::net::TcpListener;
use std::path::PathBuf;

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
use crate::store::Store;
use crate::store::api_keys::NewKey;

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

fn tenant_arg(raw: &str) -> Result<TenantId, CliError> {
    TenantId::parse(raw).ok_or_else(|| failed(format!("`{raw}` is not a tenant id (a UUID)")))
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
            if store.get_tenant(tenant).map_err(failed)?.is_none() {
                return Err(failed(format!("tenant {tenant} not found")));
            }
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
