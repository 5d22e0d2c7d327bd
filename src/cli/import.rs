//! `leadbase import` (spec §14), offline: CSV or JSON lines in the export's shape into a
//! tenant. Each row is read with the bulk row rules and written through `Store::bulk_import`,
//! 500 rows per transaction, so each row ends as the bulk route would answer for it.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::{Value, json};

use super::csv::{CsvError, CsvReader, Record};
use super::export::FormatArg;
use super::progress::Progress;
use super::{CliError, failed, offline, print, require_tenant, tenant_arg};
use crate::config::Config;
use crate::domain::ids::{OwnerId, TenantId};
use crate::domain::lead::LeadInput;
use crate::http::leads::transfer::{CsvColumns, Format, RowReader};
use crate::store::Store;
use crate::store::idempotency::StoredResponse;
use crate::store::leads::{BulkMode, Emit, OnDuplicate, RowResult, RowStatus};

/// Rows per write transaction: the bulk route's most.
const BATCH: usize = 500;
/// Failed rows the summary lists; it counts the rest.
const LISTED_FAILURES: usize = 100;
/// The file is read in pieces of this size.
const READ_BUFFER: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DuplicateArg {
    Update,
    Skip,
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
        let theirs = store.list_owners(tenant).map_err(failed)?;
        if let Some(new) = owners
            .values()
            .find(|new| theirs.iter().all(|o| o.id != **new))
        {
            return Err(failed(format!(
                "--owner-map: {new} is not an owner of tenant {tenant}"
            )));
        }
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
        let what = match args.dry_run {
            true => "import (dry run)",
            false => "import",
        };
        let mut progress = Progress::new(what, total);
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
        let mut summary = tally.summary(&args, tenant, format, ignored, started.elapsed());
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
        let input = BufReader::with_capacity(READ_BUFFER, open(path)?);
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
    /// What `leadbase import` prints at the end: the bulk route's counts, and what failed.
    fn summary(
        &self,
        args: &ImportArgs,
        tenant: TenantId,
        format: Format,
        ignored_columns: Vec<String>,
        took: Duration,
    ) -> Value {
        let seconds = took.as_secs_f64();
        json!({
            "import": args.file.display().to_string(),
            "tenant": tenant,
            "format": format.as_str(),
            "dry_run": args.dry_run,
            "on_duplicate": match args.on_duplicate {
                DuplicateArg::Update => "update",
                DuplicateArg::Skip => "skip",
            },
            "summary": {
                "total": self.total,
                "created": self.created,
                "updated": self.updated,
                "skipped": self.skipped,
                "failed": self.failed,
            },
            "failures": self.failures,
            "failures_not_listed": self.failed - self.failures.len() as u64,
            "unknown_custom_fields": self.unknown_custom_fields,
            "ignored_columns": ignored_columns,
            "seconds": (seconds * 1000.0).round() / 1000.0,
            "rows_per_second": (self.total as f64 / seconds.max(1e-3)).round(),
        })
    }

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

#[cfg(test)]
mod tests {
    use super::*;

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
