//! `POST /leads/bulk`: up to 500 rows in one transaction, each row parsed on its own so a bad
//! row fails alone; a dry run answers exactly the same and writes nothing.

use std::collections::BTreeSet;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::dto::LeadBody;
use crate::domain::ids::{LeadId, TenantId};
use crate::domain::lead::{LeadInput, MatchedBy, SourceType};
use crate::http::auth::{Caller, LeadsBulk};
use crate::http::blocking;
use crate::http::error::ApiError;
use crate::http::idempotency::{
    Claim, Fingerprint, canonical_json, claim, error_response, header_key, refuse, respond,
};
use crate::http::json::{Deferred, RawJson, described};
use crate::http::state::AppState;
use crate::store::idempotency::{IdempotentRoute, StoredResponse};
use crate::store::leads::{BulkMode, Emit, OnDuplicate, RowResult, RowStatus};
use crate::store::{Store, StoreError};

const MAX_BULK_ROWS: usize = 500;

/// The body as sent, each part kept as its text inside the one copy of the body: rows are read
/// one at a time, so a 4 MB body of small values never becomes one JSON tree (40 times its
/// size). Fields it does not know are refused: they would be carried for nothing.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkText<'a> {
    #[serde(borrow)]
    leads: Vec<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    on_duplicate: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    dry_run: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    emit_events: Option<&'a RawValue>,
}

/// A field that is there, `null` included: `null` is part of the body's fingerprint, and
/// `Option`'s own reading would take it for an absent field.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// A bulk request, parsed: what to do, and each row's input (or its errors) with its `row_ref`.
struct BulkRequest {
    dry_run: bool,
    /// Each created or updated row emits its event (spec §11.4); by default bulk is inert.
    emit_events: bool,
    mode: Result<OnDuplicate, String>,
    rows: Vec<Result<LeadInput, Vec<String>>>,
    row_refs: Vec<Value>,
    request_hash: [u8; 32],
}

fn invalid(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("invalid request body: {e}"))
}

/// A small part of the body as its canonical JSON (for the fingerprint) and as a value.
fn part(raw: &RawValue) -> Result<(String, Value), ApiError> {
    let value: Value = serde_json::from_str(raw.get()).map_err(invalid)?;
    Ok((canonical_json(&value), value))
}

impl BulkRequest {
    /// Reads the body's text. The fingerprint is the canonical JSON of the whole body, written
    /// piece by piece in the order `canonical_json` would write it (keys sorted).
    fn parse(req: &HttpRequest, raw: &RawValue, country: &str) -> Result<BulkRequest, ApiError> {
        let mut de = serde_json::Deserializer::from_str(raw.get());
        let text: BulkText = serde_path_to_error::deserialize(&mut de).map_err(invalid)?;
        let count = text.leads.len();
        let rows_fit = (1..=MAX_BULK_ROWS).contains(&count);
        let mut fingerprint = Fingerprint::start(req);
        fingerprint.add("{");
        let dry_run = match text.dry_run.map(part).transpose()? {
            Some((canonical, value)) => {
                fingerprint.add(&format!("\"dry_run\":{canonical},"));
                value
                    .as_bool()
                    .ok_or_else(|| invalid("dry_run: must be true or false"))?
            }
            None => false,
        };
        let emit_events = match text.emit_events.map(part).transpose()? {
            Some((canonical, value)) => {
                fingerprint.add(&format!("\"emit_events\":{canonical},"));
                value
                    .as_bool()
                    .ok_or_else(|| invalid("emit_events: must be true or false"))?
            }
            None => false,
        };
        fingerprint.add("\"leads\":[");
        let (mut rows, mut row_refs) = (Vec::with_capacity(count), Vec::with_capacity(count));
        for (i, row) in text.leads.iter().enumerate() {
            let (canonical, value) = part(row)?;
            fingerprint.add(if i == 0 { "" } else { "," });
            fingerprint.add(&canonical);
            // A request refused for its row count still has its fingerprint, for the key.
            if rows_fit {
                let (input, row_ref) = parse_row(&value, country);
                rows.push(input);
                row_refs.push(row_ref);
            }
        }
        fingerprint.add("]");
        let on_duplicate = text.on_duplicate.map(part).transpose()?;
        if let Some((canonical, _)) = &on_duplicate {
            fingerprint.add(&format!(",\"on_duplicate\":{canonical}"));
        }
        fingerprint.add("}");
        let mode = on_duplicate_mode(on_duplicate.map(|(_, value)| value))?;
        let mode = match rows_fit {
            true => mode,
            false => Err(format!(
                "leads must hold between 1 and {MAX_BULK_ROWS} rows (got {count})"
            )),
        };
        Ok(BulkRequest {
            dry_run,
            emit_events,
            mode,
            rows,
            row_refs,
            request_hash: fingerprint.finish(),
        })
    }
}

/// `on_duplicate`: `update` (the default) or `skip`; a value of another type is a body error.
fn on_duplicate_mode(value: Option<Value>) -> Result<Result<OnDuplicate, String>, ApiError> {
    Ok(match value {
        None | Some(Value::Null) => Ok(OnDuplicate::Update),
        Some(Value::String(s)) if s == "update" => Ok(OnDuplicate::Update),
        Some(Value::String(s)) if s == "skip" => Ok(OnDuplicate::Skip),
        Some(Value::String(other)) => Err(format!(
            "on_duplicate must be update or skip (got `{other}`)"
        )),
        Some(_) => return Err(invalid("on_duplicate: must be a string")),
    })
}

/// One row: the create fields plus `row_ref`, the caller's correlation id, a string (a number
/// is taken too), echoed and otherwise unused. `leadbase import` reads its rows with it too.
pub(super) fn parse_row(raw: &Value, country: &str) -> (Result<LeadInput, Vec<String>>, Value) {
    let row_ref = raw.get("row_ref").cloned().unwrap_or(Value::Null);
    let row: Result<LeadBody, Vec<String>> = if !raw.is_object() {
        Err(vec!["a row must be a JSON object".to_string()])
    } else if !(row_ref.is_string() || row_ref.is_number() || row_ref.is_null()) {
        Err(vec!["row_ref must be a string".to_string()])
    } else {
        described(raw).map_err(|e| vec![e])
    };
    let row_ref = match row_ref {
        Value::String(_) | Value::Number(_) => row_ref,
        _ => Value::Null,
    };
    (
        row.and_then(|r| r.parse(country, SourceType::Import)),
        row_ref,
    )
}

#[derive(Serialize)]
struct BulkResponse<'a> {
    dry_run: bool,
    summary: Summary,
    results: Vec<RowOut<'a>>,
    unknown_custom_fields: BTreeSet<&'a String>,
}

#[derive(Serialize)]
struct Summary {
    total: usize,
    created: usize,
    updated: usize,
    skipped: usize,
    failed: usize,
}

#[derive(Serialize)]
struct RowOut<'a> {
    row_ref: Value,
    lead_id: Option<LeadId>,
    status: RowStatus,
    matched_by: Option<MatchedBy>,
    errors: &'a [String],
    ignored_custom_fields: &'a [String],
}

/// The response, written straight from the results (no JSON tree of 500 rows in between).
fn render_bulk(
    dry_run: bool,
    row_refs: Vec<Value>,
) -> impl FnOnce(Result<&Vec<RowResult>, &StoreError>) -> StoredResponse + Send + 'static {
    move |result| {
        let rows = match result {
            Ok(rows) => rows,
            Err(e) => return error_response(e),
        };
        let count = |status| rows.iter().filter(|r| r.status == status).count();
        let response = BulkResponse {
            dry_run,
            summary: Summary {
                total: rows.len(),
                created: count(RowStatus::Created),
                updated: count(RowStatus::Updated),
                skipped: count(RowStatus::Skipped),
                failed: count(RowStatus::Failed),
            },
            results: rows
                .iter()
                .zip(row_refs)
                .map(|(row, row_ref)| RowOut {
                    row_ref,
                    lead_id: row.lead_id,
                    status: row.status,
                    matched_by: row.matched_by,
                    errors: &row.errors,
                    ignored_custom_fields: &row.ignored_custom_fields,
                })
                .collect(),
            unknown_custom_fields: rows.iter().flat_map(|r| &r.ignored_custom_fields).collect(),
        };
        StoredResponse {
            status: 200,
            body: serde_json::to_string(&response).expect("a bulk response serializes"),
            ..StoredResponse::default()
        }
    }
}

/// Dry runs are not stored: the key is only checked for them, and claimed for real imports
/// before anything else is checked, so that refusals are remembered too.
fn bulk_claim(
    req: &HttpRequest,
    state: &AppState,
    tenant: TenantId,
    bulk: &BulkRequest,
) -> Result<Option<Claim>, ApiError> {
    if bulk.dry_run {
        return header_key(req).map(|_| None);
    }
    let hash = bulk.request_hash;
    claim(req, state, tenant, IdempotentRoute::BulkImport, || hash).map(Some)
}

pub(super) async fn bulk(
    caller: Caller<LeadsBulk>,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Deferred<RawJson>,
) -> Result<HttpResponse, ApiError> {
    let raw = body.read_raw().await?;
    let tenant = caller.tenant;
    let country = &state.config.leads.default_country_code;
    // The body's text goes once its rows are read: the import holds only the typed rows.
    let bulk = BulkRequest::parse(&req, &raw, country)?;
    drop(raw);
    let mut claim = bulk_claim(&req, &state, tenant, &bulk)?;
    let idem = claim.as_mut().and_then(|c| c.idempotency.take());
    let on_duplicate = match bulk.mode {
        Ok(mode) => mode,
        Err(message) => return Ok(respond(refuse(&state, idem, vec![message]).await?)),
    };
    let (rows, dry_run) = (bulk.rows, bulk.dry_run);
    let mode = BulkMode {
        on_duplicate,
        dry_run,
        emit: match bulk.emit_events {
            true => Emit::Events,
            false => Emit::Nothing,
        },
    };
    let render = render_bulk(dry_run, bulk.row_refs);
    let import = move |s: &Store| s.bulk_import(tenant, rows, mode, idem, render);
    let outcome = blocking(&state, import).await?;
    drop(claim);
    Ok(respond(outcome))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;
    use serde_json::json;

    fn request() -> HttpRequest {
        TestRequest::post()
            .uri("/api/agents/crm/leads/bulk")
            .to_http_request()
    }

    fn parsed(body: &str) -> Result<BulkRequest, ApiError> {
        let raw = RawValue::from_string(body.to_string()).unwrap();
        BulkRequest::parse(&request(), &raw, "1")
    }

    #[test]
    fn the_fingerprint_made_row_by_row_is_the_whole_body_s() {
        for body in [
            r#"{"leads":[{"contact_name":"A","custom_fields":{"b":1,"a":2}},{"row_ref":7}]}"#,
            r#"{ "on_duplicate" : "skip", "leads" : [ {"contact_email":"a@example.com"} ], "dry_run": false }"#,
            r#"{"dry_run":true,"leads":[1,"x",{"z":{"y":[3,{"b":1,"a":0}]}}],"on_duplicate":"nope"}"#,
            r#"{"leads":[{}],"on_duplicate":null,"dry_run":false}"#,
        ] {
            let whole: Value = serde_json::from_str(body).unwrap();
            assert_eq!(
                parsed(body).map(|b| b.request_hash).ok(),
                Some(Fingerprint::of(&request(), &whole)),
                "{body}"
            );
        }
    }

    #[test]
    fn rows_are_parsed_alone_and_the_request_checked() {
        let bulk =
            parsed(r#"{"leads":[{"contact_name":"A","row_ref":"r1"},[],{"row_ref":{}}]}"#).unwrap();
        assert!(!bulk.dry_run);
        assert_eq!(bulk.mode, Ok(OnDuplicate::Update));
        assert!(bulk.rows[0].is_ok());
        assert_eq!(
            bulk.rows[1],
            Err(vec!["a row must be a JSON object".to_string()])
        );
        assert_eq!(
            bulk.rows[2],
            Err(vec!["row_ref must be a string".to_string()])
        );
        assert_eq!(bulk.row_refs, [json!("r1"), Value::Null, Value::Null]);

        let skip = parsed(r#"{"leads":[{}],"on_duplicate":"skip","dry_run":true}"#).unwrap();
        assert_eq!((skip.mode, skip.dry_run), (Ok(OnDuplicate::Skip), true));
        let bad_mode = parsed(r#"{"leads":[{}],"on_duplicate":"merge"}"#).unwrap();
        assert_eq!(
            bad_mode.mode,
            Err("on_duplicate must be update or skip (got `merge`)".into())
        );
        let none = parsed(r#"{"leads":[]}"#).unwrap();
        assert_eq!(
            none.mode,
            Err("leads must hold between 1 and 500 rows (got 0)".into())
        );
        for refused in [
            r#"{"leads":[],"extra":1}"#,
            r#"{"leads":{}}"#,
            r#"{"leads":[],"dry_run":"yes"}"#,
            r#"{"leads":[],"dry_run":null}"#,
            r#"{"leads":[],"on_duplicate":5}"#,
        ] {
            let message = parsed(refused).err().map(|e| e.message().to_string());
            assert!(
                message
                    .as_deref()
                    .is_some_and(|m| m.starts_with("invalid request body")),
                "{refused}: {message:?}"
            );
        }
    }
}
