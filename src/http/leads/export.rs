//! `GET /api/agents/crm/leads/export` (spec §12.3): every lead matching the pull filters, in
//! creation order, as JSON lines or CSV, streamed from one read transaction: a blocking thread
//! renders chunks into a small bounded channel that the response body drains, so memory stays
//! flat whatever the tenant's size, and a client that goes away stops the walk.

use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;

use super::dto::LeadDto;
use super::pull::ListParams;
use crate::domain::ids::TenantId;
use crate::http::auth::{Caller, LeadsRead};
use crate::http::error::ApiError;
use crate::http::non_blank;
use crate::http::state::AppState;
use crate::http::stream::Chunks;
use crate::store::lead_query::{Exported, LeadQuery};
use crate::store::lead_record::LeadView;
use crate::store::{Store, StoreError};

/// A chunk is sent once it holds this much.
const CHUNK: usize = 64 * 1024;
/// Chunks rendered ahead of the client at most.
const AHEAD: usize = 4;

#[derive(Debug, Default, Deserialize)]
pub(super) struct FormatParam {
    #[serde(default, deserialize_with = "non_blank")]
    format: Option<String>,
}

/// What an export is written as: the route's `format` and `leadbase export --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Jsonl,
    Csv,
}

impl Format {
    pub(crate) fn parse(raw: &str) -> Result<Format, String> {
        match raw {
            "jsonl" => Ok(Format::Jsonl),
            "csv" => Ok(Format::Csv),
            other => Err(format!(
                "format must be jsonl or csv (got `{}`)",
                other.chars().take(40).collect::<String>()
            )),
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        }
    }
}

/// Writes an export's items as text: the one rendering the route streams and `leadbase export`
/// writes, so the two give the same bytes.
struct Rendering {
    format: Format,
    /// The tenant's custom-field slugs, heard first: the CSV's `cf_` columns.
    fields: Vec<String>,
}

impl Rendering {
    fn new(format: Format) -> Rendering {
        Rendering {
            format,
            fields: Vec::new(),
        }
    }

    /// Appends one item: the CSV header for the field slugs, a line or a row for a lead.
    fn push(&mut self, out: &mut String, item: Exported<'_>) {
        match item {
            Exported::Fields(slugs) => {
                self.fields = slugs.to_vec();
                if self.format == Format::Csv {
                    let header = COLUMNS
                        .iter()
                        .map(|c| c.to_string())
                        .chain(self.fields.iter().map(|s| format!("{CUSTOM_PREFIX}{s}")));
                    csv_row(out, header);
                }
            }
            Exported::Lead(view) => match self.format {
                Format::Jsonl => {
                    let line = serde_json::to_string(&LeadDto::new(view, true)).unwrap_or_default();
                    out.push_str(&line);
                    out.push('\n');
                }
                Format::Csv => lead_row(out, view, &self.fields),
            },
        }
    }
}

/// A custom field's CSV column is its slug after this.
pub(super) const CUSTOM_PREFIX: &str = "cf_";

/// The Lead's scalar columns, in the order of the CSV header.
pub(super) const COLUMNS: [&str; 17] = [
    "id",
    "customer_id",
    "source_platform",
    "source_type",
    "status",
    "created_at",
    "updated_at",
    "contact_name",
    "contact_phone",
    "contact_email",
    "score",
    "qualified",
    "current_stage",
    "owner",
    "last_interaction_at",
    "interaction_count",
    "version",
];

/// One CSV cell (RFC 4180): quoted when it holds a comma, a quote or a line break, quotes
/// doubled. A cell a spreadsheet would read as a formula (a leading `=`, `+`, `-` or `@`) gets
/// a leading `'`, unless it is a plain number (`-5`); so does text that starts with `'` itself,
/// so that a leading `'` always is the guard and [`unguard`] can take it off again.
fn cell(out: &mut String, text: &str) {
    let plain_number = text.parse::<f64>().is_ok() && !text.starts_with('+');
    let guard = text.starts_with('\'') || (!plain_number && text.starts_with(['=', '+', '-', '@']));
    let quote = text.contains([',', '"', '\r', '\n']);
    if quote {
        out.push('"');
    }
    if guard {
        out.push('\'');
    }
    for c in text.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quote {
        out.push('"');
    }
}

/// A CSV cell's text as it was before [`cell`] guarded it.
pub(super) fn unguard(cell: &str) -> &str {
    cell.strip_prefix('\'').unwrap_or(cell)
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn csv_row(out: &mut String, cells: impl IntoIterator<Item = String>) {
    for (i, text) in cells.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        cell(out, &text);
    }
    out.push_str("\r\n");
}

/// A lead as a CSV row: the scalar columns (the stage as its slug, the owner as its id), then
/// one cell per custom field.
fn lead_row(out: &mut String, view: &LeadView, fields: &[String]) {
    let dto = serde_json::to_value(LeadDto::new(view, true)).unwrap_or_default();
    let mut cells: Vec<String> = COLUMNS
        .iter()
        .map(|column| match *column {
            "current_stage" => view.stage.slug.clone(),
            "owner" => view
                .owner
                .as_ref()
                .map(|o| o.id.to_string())
                .unwrap_or_default(),
            other => scalar(&dto[other]),
        })
        .collect();
    cells.extend(
        fields
            .iter()
            .map(|slug| view.custom_fields.get(slug).map(scalar).unwrap_or_default()),
    );
    csv_row(out, cells);
}

/// Renders the tenant's leads that `query` selects in `format`, in pieces of about [`CHUNK`]
/// bytes, each handed to `emit`, which empties it (and answers false to stop); returns how
/// many leads were rendered. The route streams the pieces, `leadbase export` writes them.
pub(crate) fn render_export(
    store: &Store,
    tenant: TenantId,
    query: &LeadQuery,
    format: Format,
    mut emit: impl FnMut(&mut String) -> bool,
) -> Result<u64, StoreError> {
    let mut rendering = Rendering::new(format);
    let mut buf = String::with_capacity(CHUNK + 4096);
    let (mut leads, mut going) = (0, true);
    store.export_leads(tenant, query, |item| {
        leads += u64::from(matches!(item, Exported::Lead(_)));
        rendering.push(&mut buf, item);
        going = buf.len() < CHUNK || emit(&mut buf);
        going
    })?;
    if going && !buf.is_empty() {
        emit(&mut buf);
    }
    Ok(leads)
}

pub(super) async fn export(
    caller: Caller<LeadsRead>,
    state: web::Data<AppState>,
    params: web::Query<ListParams>,
    format: web::Query<FormatParam>,
) -> Result<HttpResponse, ApiError> {
    let format = match format.format.as_deref() {
        None => Format::Jsonl,
        Some(raw) => Format::parse(raw).map_err(ApiError::bad_request)?,
    };
    let (query, _) = params.into_inner().parse()?;
    let tenant = caller.tenant;
    let (tx, rx) = mpsc::channel::<Bytes>(AHEAD);
    let store = state.store.clone();
    // The walk runs on the blocking pool; the response goes out as it renders.
    actix_web::rt::spawn(async move {
        let walked = web::block(move || {
            render_export(&store, tenant, &query, format, |buf| {
                tx.blocking_send(Bytes::from(std::mem::take(buf))).is_ok()
            })
        })
        .await;
        match walked {
            Ok(Err(e)) => tracing::error!(error = %e, "export stopped: the output is cut short"),
            Err(e) => tracing::error!(error = %e, "export stopped: the output is cut short"),
            Ok(Ok(_)) => {}
        }
    });
    let (content_type, file) = match format {
        Format::Jsonl => ("application/x-ndjson", "leads.jsonl"),
        Format::Csv => ("text/csv; charset=utf-8", "leads.csv"),
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            "content-disposition",
            format!("attachment; filename=\"{file}\""),
        ))
        .body(Chunks::new(rx, None)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> String {
        let mut out = String::new();
        cell(&mut out, text);
        out
    }

    #[test]
    fn cells_are_quoted_per_rfc_4180_and_formulas_defused() {
        assert_eq!(one("plain"), "plain");
        assert_eq!(one("a,b"), "\"a,b\"");
        assert_eq!(one("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(one("two\nlines"), "\"two\nlines\"");
        assert_eq!(one("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(one("+12065550123"), "'+12065550123");
        assert_eq!(one("@cmd"), "'@cmd");
        assert_eq!(one("-5"), "-5", "a plain number stays a number");
        assert_eq!(one("-x,y"), "\"'-x,y\"");
        assert_eq!(
            one("'quoted"),
            "''quoted",
            "a leading quote is always the guard"
        );
    }

    #[test]
    fn unguard_takes_back_what_the_guard_added() {
        for text in [
            "plain", "=SUM(A1)", "+1206", "-5", "-x", "@cmd", "'", "''x", "'=x", "",
        ] {
            let mut out = String::new();
            cell(&mut out, text);
            assert_eq!(unguard(&out), text, "{out}");
        }
    }
}
