//! `leadbase export` and `leadbase import` (spec §14), offline: a tenant's leads to a file,
//! and a file of leads into a tenant. The export is the route's own rendering, so it gives the
//! same bytes; the import reads each row with the bulk row rules and writes it through
//! `Store::bulk_import`, 500 rows per transaction, so each row ends as the bulk route would
//! answer for it.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::json;

use super::csv::{CsvError, CsvReader, Record};
use super::{CliError, failed, offline, print, tenant_arg};
use crate::config::Config;
use crate::domain::ids::{OwnerId, TenantId};
use crate::domain::lead::LeadInput;
use crate::http::leads::transfer::{CsvColumns, Format, Rendering, RowReader, export_query};
use crate::store::Store;
use crate::store::idempotency::StoredResponse;
use crate::store::lead_query::{Exported, LeadQuery};
use crate::store::leads::{BulkMode, Emit, OnDuplicate, RowResult, RowStatus};

/// Rows per write transaction: the bulk route's most.
const BATCH: usize = 500;
/// Export output is written in pieces of about this size.
const CHUNK: usize = 64 * 1024;
/// Failed rows the summary lists; it counts the rest.
const LISTED_FAILURES: usize = 100;

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

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DuplicateArg {
    Update,
    Skip,
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

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The tenant (customer) the leads go to; it must exist.
    #[arg(long, value_name = "TENANT_ID")]
    tenant: String,
    /// A CSV or JSON-lines file in the export's shape (the bulk row's field names are read
    /// too).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The file's format. By default its extension says (.csv; .jsonl, .ndjson, .json), else
    /// its first character (`{`: JSON lines).
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// Read and check every row and report what would happen; write nothing. Each batch of
    /// 500 is tried on its own, so a row that matches a lead only a row of an earlier batch
    /// would create reports `created`.
    #[arg(long)]
    dry_run: bool,
    /// A row that matches a lead (the same e-mail, else the same last 10 phone digits):
    /// merge into that lead (update) or leave it (skip).
    #[arg(long, value_enum, default_value = "update")]
    on_duplicate: DuplicateArg,
    /// Rows of owner OLD (an owner id in the file) go to owner NEW of this tenant: owners are
    /// made per tenant, so an export read into another tenant names owners it does not have.
    /// Repeat the flag, or separate pairs with commas.
    #[arg(long, value_name = "OLD=NEW", value_delimiter = ',')]
    owner_map: Vec<String>,
}

fn require_tenant(store: &Store, tenant: TenantId) -> Result<(), CliError> {
    match store.get_tenant(tenant).map_err(failed)? {
        Some(_) => Ok(()),
        None => Err(failed(format!("tenant {tenant} not found"))),
    }
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
    let mut rendering = Rendering::new(format);
    let mut buf = String::with_capacity(CHUNK + 4096);
    let mut leads = 0;
    let mut failure = None;
    store
        .export_leads(tenant, query, |item| {
            leads += u64::from(matches!(item, Exported::Lead(_)));
            rendering.push(&mut buf, item);
            if buf.len() < CHUNK {
                return true;
            }
            let written = out.write_all(buf.as_bytes());
            buf.clear();
            written.map_err(|e| failure = Some(e)).is_ok()
        })
        .map_err(failed)?;
    let written = match failure {
        Some(e) => Err(e),
        None => out.write_all(buf.as_bytes()).and_then(|()| out.flush()),
    };
    written.map_err(|e| failed(format!("cannot write the export: {e}")))?;
    Ok(leads)
}

/// Writes `path` as a new file, mode 0600, through `FILE.part`: a failed export leaves no file.
fn write_new_file<T>(
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
    let mut out = BufWriter::with_capacity(CHUNK, file);
    let written = write(&mut out).and_then(|value| {
        let file = out
            .into_inner()
            .map_err(|e| failed(format!("cannot write {}: {}", part.display(), e.error())))?;
        file.sync_all()
            .and_then(|()| std::fs::rename(&part, path))
            .map_err(|e| failed(format!("cannot write {}: {e}", path.display())))?;
        Ok(value)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    written
}

/// `leadbase import`.
pub(super) fn import(config: &Config, args: ImportArgs) -> Result<(), CliError> {
    let tenant = tenant_arg(&args.tenant)?;
    let owners = owner_map(&args.owner_map)?;
    let format = match args.format {
        Some(format) => Format::from(format),
        None => detect(&args.file)?,
    };
    // The whole file is read once before anything is written: one that cannot be read, is not
    // UTF-8 or is no CSV of leads changes nothing. The count gives the progress its total.
    let total = {
        let mut source = Source::open(&args.file, format)?;
        let mut rows = 0u64;
        while source.next_raw()?.is_some() {
            rows += 1;
        }
        rows
    };
    let mode = BulkMode {
        on_duplicate: match args.on_duplicate {
            DuplicateArg::Update => OnDuplicate::Update,
            DuplicateArg::Skip => OnDuplicate::Skip,
        },
        dry_run: args.dry_run,
        emit: Emit::Nothing,
    };
    offline(config, |store| {
        require_tenant(store, tenant)?;
        let field_types = store
            .list_custom_fields(tenant)
            .map_err(failed)?
            .into_iter()
            .map(|f| (f.slug, f.field_type))
            .collect();
        let reader = RowReader::new(&config.leads.default_country_code, owners, field_types);
        let mut source = Source::open(&args.file, format)?;
        let ignored = source.ignored_columns();
        if !ignored.is_empty() {
            eprintln!("import: not read, no such field: {}", ignored.join(", "));
        }
        let started = Instant::now();
        let mut tally = Tally::default();
        let mut progress = Progress::new(total, args.dry_run);
        let run = (|| -> Result<(), CliError> {
            let mut batch = Batch::default();
            while let Some((line, row)) = source.next_row(&reader)? {
                batch.lines.push(line);
                batch.rows.push(row);
                if batch.rows.len() == BATCH {
                    tally.add(write_batch(
                        store,
                        tenant,
                        mode,
                        std::mem::take(&mut batch),
                    )?);
                    progress.show(tally.total);
                }
            }
            if !batch.rows.is_empty() {
                tally.add(write_batch(store, tenant, mode, batch)?);
            }
            Ok(())
        })();
        progress.finish(tally.total);
        let seconds = started.elapsed().as_secs_f64();
        let mut summary = json!({
            "import": args.file.display().to_string(),
            "tenant": tenant,
            "format": format.as_str(),
            "dry_run": args.dry_run,
            "on_duplicate": match mode.on_duplicate {
                OnDuplicate::Update => "update",
                OnDuplicate::Skip => "skip",
            },
            "summary": {
                "total": tally.total,
                "created": tally.created,
                "updated": tally.updated,
                "skipped": tally.skipped,
                "failed": tally.failed,
            },
            "failures": tally.failures,
            "failures_not_listed": tally.failed - tally.failures.len() as u64,
            "unknown_custom_fields": tally.unknown_custom_fields,
            "ignored_columns": ignored,
            "seconds": (seconds * 1000.0).round() / 1000.0,
            "rows_per_second": (tally.total as f64 / seconds.max(1e-3)).round(),
        });
        if let Err(e) = &run {
            summary["stopped"] = json!(format!(
                "{e}; no row after line {} was imported",
                tally.last_line
            ));
        }
        print(summary);
        run?;
        match tally.failed {
            0 => Ok(()),
            n => Err(failed(format!(
                "{n} of {} rows {}; the summary lists their lines and reasons",
                tally.total,
                if args.dry_run { "would fail" } else { "failed" },
            ))),
        }
    })
}

/// `--owner-map OLD=NEW,…`.
fn owner_map(pairs: &[String]) -> Result<HashMap<OwnerId, OwnerId>, CliError> {
    pairs
        .iter()
        .map(|pair| {
            let (old, new) = pair.split_once('=').unwrap_or((pair, ""));
            match (OwnerId::parse(old), OwnerId::parse(new)) {
                (Some(old), Some(new)) => Ok((old, new)),
                _ => Err(CliError::Usage(format!(
                    "--owner-map takes OLD=NEW, two owner ids (got `{pair}`)"
                ))),
            }
        })
        .collect()
}

/// The format a file's name says, else its first character: `{` is JSON lines.
fn detect(path: &Path) -> Result<Format, CliError> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("csv") => return Ok(Format::Csv),
        Some("jsonl" | "ndjson" | "json") => return Ok(Format::Jsonl),
        _ => {}
    }
    let mut head = Vec::with_capacity(1024);
    open(path)?
        .take(1024)
        .read_to_end(&mut head)
        .map_err(|e| cannot_read(path, e))?;
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head);
    Ok(match head.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | None => Format::Jsonl,
        Some(_) => Format::Csv,
    })
}

fn open(path: &Path) -> Result<File, CliError> {
    File::open(path).map_err(|e| cannot_read(path, e))
}

fn cannot_read(path: &Path, e: io::Error) -> CliError {
    failed(format!("cannot read {}: {e}", path.display()))
}

/// The rows of an import file, one at a time.
enum Source {
    Jsonl {
        input: BufReader<File>,
        line: u64,
        buf: Vec<u8>,
    },
    Csv {
        reader: CsvReader<BufReader<File>>,
        columns: CsvColumns,
    },
}

/// A row as read, before its fields are: a JSON line, or a CSV record.
enum Raw {
    Line(u64, String),
    Record(Record),
}

impl Source {
    fn open(path: &Path, format: Format) -> Result<Source, CliError> {
        let input = BufReader::with_capacity(CHUNK, open(path)?);
        let located = |e: CsvError| failed(format!("{}: {e}", path.display()));
        Ok(match format {
            Format::Jsonl => Source::Jsonl {
                input,
                line: 0,
                buf: Vec::new(),
            },
            Format::Csv => {
                let mut reader = CsvReader::new(input);
                let header = reader
                    .next_record()
                    .map_err(located)?
                    .ok_or_else(|| failed(format!("{}: no header row", path.display())))?;
                let columns = CsvColumns::parse(&header.cells)
                    .map_err(|e| failed(format!("{}: {e}", path.display())))?;
                Source::Csv { reader, columns }
            }
        })
    }

    fn ignored_columns(&self) -> Vec<String> {
        match self {
            Source::Jsonl { .. } => Vec::new(),
            Source::Csv { columns, .. } => columns.ignored.clone(),
        }
    }

    /// The next row as text; blank lines are none.
    fn next_raw(&mut self) -> Result<Option<Raw>, CliError> {
        match self {
            Source::Jsonl { input, line, buf } => loop {
                buf.clear();
                if input.read_until(b'\n', buf).map_err(failed)? == 0 {
                    return Ok(None);
                }
                *line += 1;
                let bytes = match *line {
                    1 => buf.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(buf),
                    _ => buf,
                };
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let text = std::str::from_utf8(bytes).map_err(|_| {
                    failed(format!(
                        "line {line}: the text is not UTF-8 (save the file as UTF-8)"
                    ))
                })?;
                return Ok(Some(Raw::Line(*line, text.trim_end().to_string())));
            },
            Source::Csv { reader, .. } => reader
                .next_record()
                .map(|r| r.map(Raw::Record))
                .map_err(failed),
        }
    }

    /// The next row, with its line.
    fn next_row(&mut self, reader: &RowReader) -> Result<Option<(u64, Row)>, CliError> {
        Ok(match self.next_raw()? {
            None => None,
            Some(Raw::Line(line, text)) => Some((line, reader.json_line(&text))),
            Some(Raw::Record(record)) => {
                let Source::Csv { columns, .. } = self else {
                    unreachable!("a record comes from a CSV source")
                };
                Some((record.line, reader.csv_record(columns, record.cells)))
            }
        })
    }
}

/// A row read into a bulk row, or the reasons it is not one.
type Row = Result<LeadInput, Vec<String>>;

#[derive(Default)]
struct Batch {
    lines: Vec<u64>,
    rows: Vec<Row>,
}

/// One write transaction through the bulk rules; each row's result, with its line.
fn write_batch(
    store: &Store,
    tenant: TenantId,
    mode: BulkMode,
    batch: Batch,
) -> Result<(Vec<u64>, Vec<RowResult>), CliError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    store
        .bulk_import(tenant, batch.rows, mode, None, move |result| {
            let _ = tx.send(result.cloned().map_err(|e| e.to_string()));
            StoredResponse::default()
        })
        .map_err(failed)?;
    let results = rx
        .try_recv()
        .map_err(|_| failed("the import gave no results"))?
        .map_err(failed)?;
    Ok((batch.lines, results))
}

#[derive(Serialize)]
struct Failure {
    line: u64,
    errors: Vec<String>,
}

#[derive(Default)]
struct Tally {
    total: u64,
    created: u64,
    updated: u64,
    skipped: u64,
    failed: u64,
    failures: Vec<Failure>,
    unknown_custom_fields: BTreeSet<String>,
    /// The line of the last row written.
    last_line: u64,
}

impl Tally {
    fn add(&mut self, (lines, results): (Vec<u64>, Vec<RowResult>)) {
        for (line, result) in lines.into_iter().zip(results) {
            self.total += 1;
            self.last_line = line;
            match result.status {
                RowStatus::Created => self.created += 1,
                RowStatus::Updated => self.updated += 1,
                RowStatus::Skipped => self.skipped += 1,
                RowStatus::Failed => {
                    self.failed += 1;
                    if self.failures.len() < LISTED_FAILURES {
                        self.failures.push(Failure {
                            line,
                            errors: result.errors,
                        });
                    }
                }
            }
            self.unknown_custom_fields
                .extend(result.ignored_custom_fields);
        }
    }
}

/// The progress line on stderr: redrawn in place on a terminal, else a line every few seconds.
struct Progress {
    total: u64,
    what: &'static str,
    started: Instant,
    shown: Instant,
    terminal: bool,
}

impl Progress {
    fn new(total: u64, dry_run: bool) -> Progress {
        let now = Instant::now();
        Progress {
            total,
            what: if dry_run {
                "import (dry run)"
            } else {
                "import"
            },
            started: now,
            shown: now,
            terminal: io::stderr().is_terminal(),
        }
    }

    fn show(&mut self, done: u64) {
        let every = match self.terminal {
            true => Duration::from_millis(200),
            false => Duration::from_secs(5),
        };
        if self.shown.elapsed() < every {
            return;
        }
        self.shown = Instant::now();
        let rate = self.rate(done);
        let eta = match rate > 0.0 {
            true => clock(self.total.saturating_sub(done) as f64 / rate),
            false => "?".into(),
        };
        let line = format!(
            "{}: {done} / {} rows ({}%), {rate:.0} rows/s, ETA {eta}",
            self.what,
            self.total,
            (done * 100).checked_div(self.total).unwrap_or(100)
        );
        self.draw(&line, false);
    }

    fn finish(&self, done: u64) {
        let line = format!(
            "{}: {done} / {} rows in {:.1} s, {:.0} rows/s",
            self.what,
            self.total,
            self.started.elapsed().as_secs_f64(),
            self.rate(done)
        );
        self.draw(&line, true);
    }

    fn rate(&self, done: u64) -> f64 {
        done as f64 / self.started.elapsed().as_secs_f64().max(1e-3)
    }

    fn draw(&self, line: &str, last: bool) {
        let mut err = io::stderr().lock();
        let _ = match (self.terminal, last) {
            (true, false) => write!(err, "\r{line}\x1b[K"),
            (true, true) => writeln!(err, "\r{line}\x1b[K"),
            (false, _) => writeln!(err, "{line}"),
        };
        let _ = err.flush();
    }
}

/// Seconds as `m:ss`, or `h:mm:ss`.
fn clock(seconds: f64) -> String {
    let s = seconds.ceil() as u64;
    match s / 3600 {
        0 => format!("{}:{:02}", s / 60, s % 60),
        h => format!("{h}:{:02}:{:02}", s / 60 % 60, s % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_reads_as_a_clock() {
        assert_eq!(clock(0.2), "0:01");
        assert_eq!(clock(75.0), "1:15");
        assert_eq!(clock(3_725.0), "1:02:05");
    }

    #[test]
    fn owner_maps_take_pairs_of_ids() {
        let old = "0190a000-0000-7000-8000-000000000001";
        let new = "0190a000-0000-7000-8000-000000000002";
        let map = owner_map(&[format!("{old}={new}")]).unwrap();
        assert_eq!(
            map.get(&OwnerId::parse(old).unwrap()),
            OwnerId::parse(new).as_ref()
        );
        for bad in [old.to_string(), format!("{old}=x"), "=".into()] {
            assert!(matches!(owner_map(&[bad]), Err(CliError::Usage(_))));
        }
    }
}
