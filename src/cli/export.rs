//! `leadbase export` (spec §14), offline: a tenant's leads to stdout or a new file. It is the
//! route's own rendering, so it gives the same bytes.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, ValueEnum};

use super::{CliError, failed, offline, require_tenant, tenant_arg, write_new_file};
use crate::config::Config;
use crate::domain::ids::TenantId;
use crate::http::leads::transfer::{Format, export_query, render_export};
use crate::store::Store;
use crate::store::lead_query::LeadQuery;

/// Output is written in pieces of about this size.
const CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Jsonl,
    Csv,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Jsonl => Format::Jsonl,
            FormatArg::Csv => Format::Csv,
        }
    }
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The tenant (customer) whose leads to write.
    #[arg(long, value_name = "TENANT_ID")]
    tenant: String,
    /// jsonl: one Lead with its custom fields per line. csv: RFC 4180, a header row, the
    /// stage as its slug, the owner as its id, one cf_<slug> column per custom field, and a
    /// leading ' on text a spreadsheet would run as a formula.
    #[arg(long, value_enum, default_value = "jsonl")]
    format: FormatArg,
    /// Write to FILE (a new file, mode 0600: it holds personal data) instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Only leads with this status (the export route's filters, by the same rules).
    #[arg(long)]
    status: Option<String>,
    /// Only leads at this stage.
    #[arg(long, value_name = "SLUG")]
    stage_slug: Option<String>,
    /// Only buyers or sellers.
    #[arg(long, value_name = "buyer|seller")]
    lead_line: Option<String>,
    /// Only leads whose name or e-mail holds TEXT, or whose phone holds its digits.
    #[arg(long, value_name = "TEXT")]
    search: Option<String>,
    /// Only leads created at or after TIME (ISO-8601).
    #[arg(long, value_name = "TIME")]
    created_since: Option<String>,
    /// Only leads updated at or after TIME (ISO-8601).
    #[arg(long, value_name = "TIME")]
    updated_since: Option<String>,
}

/// `leadbase export`.
pub(super) fn export(config: &Config, args: ExportArgs) -> Result<(), CliError> {
    let tenant = tenant_arg(&args.tenant)?;
    let filters: Vec<(&str, &str)> = [
        ("status", &args.status),
        ("stage_slug", &args.stage_slug),
        ("lead_line", &args.lead_line),
        ("search", &args.search),
        ("created_since", &args.created_since),
        ("updated_since", &args.updated_since),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some((name, value.as_deref()?)))
    .collect();
    let query = export_query(&filters).map_err(CliError::Usage)?;
    let format = Format::from(args.format);
    if let Some(out) = &args.out
        && out.exists()
    {
        return Err(failed(format!(
            "{} exists; an export writes a new file",
            out.display()
        )));
    }
    offline(config, |store| {
        require_tenant(store, tenant)?;
        let started = Instant::now();
        let leads = match &args.out {
            None => {
                let mut out = BufWriter::with_capacity(CHUNK, io::stdout().lock());
                write_export(store, tenant, &query, format, &mut out)?
            }
            Some(path) => {
                write_new_file(path, |out| write_export(store, tenant, &query, format, out))?
            }
        };
        eprintln!(
            "export: {leads} leads as {} {}in {:.1} s",
            format.as_str(),
            args.out
                .as_ref()
                .map(|p| format!("to {} ", p.display()))
                .unwrap_or_default(),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    })
}

/// Renders the export into `out` as the route does; returns how many leads it wrote.
fn write_export(
    store: &Store,
    tenant: TenantId,
    query: &LeadQuery,
    format: Format,
    out: &mut impl Write,
) -> Result<u64, CliError> {
    let mut failure = None;
    let leads = render_export(store, tenant, query, format, |buf| {
        let written = out.write_all(buf.as_bytes());
        buf.clear();
        written.map_err(|e| failure = Some(e)).is_ok()
    })
    .map_err(failed)?;
    let written = match failure {
        Some(e) => Err(e),
        None => out.flush(),
    };
    written.map_err(|e| failed(format!("cannot write the export: {e}")))?;
    Ok(leads)
}
