//! What `leadbase export` and `leadbase import` (spec §14) share with the routes: the export's
//! filters and rendering, and a lead in the export's shape read back as a bulk row.
//!
//! Reading back, a row goes through the bulk row rules (`parse_row`) after two renames: the
//! export's `current_stage` (an object, or in CSV its slug) is the row's `stage_slug`, and its
//! `owner` (an object, or in CSV its id) is `owner_id`, mapped by `--owner-map` when the owner
//! has another id where the leads go. `status`, `score` and `qualified` are read too: the
//! create fields do not have them, but a lead read back keeps them. What the store gives a lead
//! (`id`, `customer_id`, `created_at`, `updated_at`, `version`, `last_interaction_at`,
//! `interaction_count`, the stage's and owner's other fields) is not read: the bulk rules make
//! a new lead, or merge into the one that has its e-mail or phone.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Number, Value};

use super::bulk::parse_row;
use super::export::{COLUMNS, CUSTOM_PREFIX, unguard};
use super::pull::ListParams;
use crate::domain::catalog::FieldType;
use crate::domain::ids::OwnerId;
use crate::domain::lead::{LeadInput, LeadStatus};
use crate::store::lead_query::LeadQuery;

pub(crate) use super::export::{Format, render_export};

/// The query of an export with these pull filters (`status`, `stage_slug`, …, by their query
/// names), refused as the route would refuse them.
pub(crate) fn export_query(filters: &[(&str, &str)]) -> Result<LeadQuery, String> {
    let params: Map<String, Value> = filters
        .iter()
        .map(|(name, value)| (name.to_string(), Value::String(value.to_string())))
        .collect();
    let params: ListParams =
        serde_json::from_value(Value::Object(params)).map_err(|e| e.to_string())?;
    params
        .parse()
        .map(|(query, _)| query)
        .map_err(|e| e.message().to_string())
}

/// Reads rows in the export's shape for one tenant.
pub(crate) struct RowReader {
    country_code: String,
    /// An exported owner's id → the id of the owner of the tenant the rows go to.
    owners: HashMap<OwnerId, OwnerId>,
    /// The tenant's custom fields by slug: a CSV cell is text, its definition says what it
    /// holds.
    field_types: HashMap<String, FieldType>,
}

impl RowReader {
    pub(crate) fn new(
        country_code: &str,
        owners: HashMap<OwnerId, OwnerId>,
        field_types: HashMap<String, FieldType>,
    ) -> RowReader {
        RowReader {
            country_code: country_code.to_string(),
            owners,
            field_types,
        }
    }

    /// One line of a JSON-lines export.
    pub(crate) fn json_line(&self, line: &str) -> Result<LeadInput, Vec<String>> {
        match serde_json::from_str(line) {
            Ok(value) => self.lead(value),
            Err(e) => Err(vec![format!("not a JSON object: {e}")]),
        }
    }

    /// One record of a CSV export, under its header.
    pub(crate) fn csv_record(
        &self,
        columns: &CsvColumns,
        cells: Vec<String>,
    ) -> Result<LeadInput, Vec<String>> {
        if cells.len() != columns.columns.len() {
            return Err(vec![format!(
                "the row has {} cells, the header {}",
                cells.len(),
                columns.columns.len()
            )]);
        }
        let mut row = Map::new();
        let mut custom = Map::new();
        for (column, cell) in columns.columns.iter().zip(&cells) {
            // An empty cell is a value the lead does not have, as the export writes it.
            let text = unguard(cell);
            if text.is_empty() {
                continue;
            }
            match column {
                Column::Field(name) => {
                    row.insert(name.clone(), scalar_cell(name, text));
                }
                Column::Custom(slug) => {
                    let value = custom_cell(self.field_types.get(slug).copied(), text);
                    custom.insert(slug.clone(), value);
                }
                Column::Ignored => {}
            }
        }
        if !custom.is_empty() {
            row.insert("custom_fields".into(), Value::Object(custom));
        }
        self.lead(Value::Object(row))
    }

    /// A lead object in the export's shape; the bulk row's own names (`stage_slug`,
    /// `owner_id`, `lead_line`) are read too, and win.
    fn lead(&self, value: Value) -> Result<LeadInput, Vec<String>> {
        let Value::Object(mut row) = value else {
            return Err(vec!["a row must be a JSON object".into()]);
        };
        let mut errors = Vec::new();
        for (field, exported, member, wrong) in [
            (
                "stage_slug",
                "current_stage",
                "slug",
                "current_stage must be a stage or its slug",
            ),
            (
                "owner_id",
                "owner",
                "id",
                "owner must be an owner or its id",
            ),
        ] {
            if row.contains_key(field) {
                continue;
            }
            match row.get(exported).map(|v| reference(v, member)) {
                Some(Ok(Some(value))) => {
                    row.insert(field.into(), Value::String(value));
                }
                Some(Err(())) => errors.push(wrong.into()),
                Some(Ok(None)) | None => {}
            }
        }
        if let Some(Value::String(id)) = row.get_mut("owner_id")
            && let Some(mapped) = OwnerId::parse(id).and_then(|old| self.owners.get(&old))
        {
            *id = mapped.to_string();
        }
        let status = match row.get("status") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => LeadStatus::parse(s).map_err(|e| errors.push(e)).ok(),
            Some(_) => {
                errors.push("status must be a string".into());
                None
            }
        };
        let score = match row.get("score") {
            None | Some(Value::Null) => None,
            Some(v) => v.as_i64().or_else(|| {
                errors.push(format!("score must be a whole number (got {v})"));
                None
            }),
        };
        let qualified = match row.get("qualified") {
            None | Some(Value::Null) => None,
            Some(v) => v.as_bool().or_else(|| {
                errors.push(format!("qualified must be true or false (got {v})"));
                None
            }),
        };
        match parse_row(&Value::Object(row), &self.country_code).0 {
            Ok(input) if errors.is_empty() => Ok(LeadInput {
                status,
                score,
                qualified,
                ..input
            }),
            Ok(_) => Err(errors),
            Err(mut row_errors) => {
                row_errors.append(&mut errors);
                Err(row_errors)
            }
        }
    }
}

/// A stage or owner as the export shows it: an object (its `key` is taken), or in CSV the key
/// itself; `null` is none.
fn reference(value: &Value, key: &str) -> Result<Option<String>, ()> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Object(o) => match o.get(key) {
            Some(Value::String(s)) => Ok(Some(s.clone())),
            _ => Err(()),
        },
        _ => Err(()),
    }
}

/// A scalar column's cell as the JSON value the JSON-lines export has there.
fn scalar_cell(name: &str, text: &str) -> Value {
    match name {
        "score" | "interaction_count" | "version" => text
            .parse::<i64>()
            .map_or_else(|_| Value::String(text.into()), Value::from),
        "qualified" => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(text.into()),
        },
        _ => Value::String(text.into()),
    }
}

/// A custom field's cell as the value its definition holds. Text that is not one stays text,
/// for the bulk rules to refuse with the field's name.
fn custom_cell(field_type: Option<FieldType>, text: &str) -> Value {
    match field_type {
        Some(FieldType::Number) => text
            .parse::<Number>()
            .map_or_else(|_| Value::String(text.into()), Value::Number),
        Some(FieldType::Boolean) => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(text.into()),
        },
        Some(FieldType::String) | None => Value::String(text.into()),
    }
}

enum Column {
    /// One of the Lead's scalar columns, or a bulk row field, by its name.
    Field(String),
    /// `cf_<slug>`.
    Custom(String),
    Ignored,
}

/// A CSV export's header: what each column holds.
pub(crate) struct CsvColumns {
    columns: Vec<Column>,
    /// Columns that are neither the export's nor a bulk row's: not read.
    pub(crate) ignored: Vec<String>,
}

/// Bulk row fields a CSV may have besides the export's columns.
const ROW_FIELDS: [&str; 3] = ["stage_slug", "owner_id", "lead_line"];

impl CsvColumns {
    /// Refuses a header that names a column twice, or none of the contact columns (a file
    /// that is no export of leads would only fail row by row).
    pub(crate) fn parse(header: &[String]) -> Result<CsvColumns, String> {
        let mut seen = BTreeSet::new();
        let mut ignored = Vec::new();
        let mut columns = Vec::with_capacity(header.len());
        for name in header {
            if !seen.insert(name.as_str()) {
                return Err(format!("the header names the column `{name}` twice"));
            }
            columns.push(if let Some(slug) = name.strip_prefix(CUSTOM_PREFIX) {
                Column::Custom(slug.to_string())
            } else if COLUMNS.contains(&name.as_str()) || ROW_FIELDS.contains(&name.as_str()) {
                Column::Field(name.clone())
            } else {
                ignored.push(name.clone());
                Column::Ignored
            });
        }
        let contacts = ["contact_name", "contact_phone", "contact_email"];
        if !contacts.iter().any(|c| seen.contains(c)) {
            return Err(format!(
                "the header names none of {}: not an export of leads",
                contacts.join(", ")
            ));
        }
        Ok(CsvColumns { columns, ignored })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reader() -> RowReader {
        let old = OwnerId::parse("0190a000-0000-7000-8000-000000000001").unwrap();
        let new = OwnerId::parse("0190a000-0000-7000-8000-000000000002").unwrap();
        RowReader::new(
            "1",
            HashMap::from([(old, new)]),
            HashMap::from([
                ("budget".to_string(), FieldType::Number),
                ("vip".to_string(), FieldType::Boolean),
                ("notes".to_string(), FieldType::String),
                ("lead_line".to_string(), FieldType::String),
            ]),
        )
    }

    fn strings(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn an_exported_line_reads_back_as_its_create_fields_and_status() {
        let line = json!({
            "id": "0190a000-0000-7000-8000-00000000000a",
            "customer_id": "0190a000-0000-7000-8000-00000000000b",
            "source_platform": "referral", "source_type": "form", "status": "won",
            "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:00.000Z",
            "contact_name": "Ada", "contact_phone": "+12065550123", "contact_email": null,
            "score": -5, "qualified": true,
            "current_stage": { "id": "0190a000-0000-7000-8000-00000000000c", "slug": "contacted", "name": "Contacted", "color": null },
            "owner": { "id": "0190a000-0000-7000-8000-000000000001", "name": "Bo", "role_name": null },
            "last_interaction_at": null, "interaction_count": 3,
            "custom_fields": { "budget": 5, "lead_line": "buyer" }, "version": 4
        });
        let input = reader().json_line(&line.to_string()).unwrap();
        assert_eq!(input.contact_name.as_deref(), Some("Ada"));
        assert_eq!(
            input.contact_phone.map(|p| p.as_str().to_string()),
            Some("+12065550123".into())
        );
        assert_eq!(input.stage_slug.as_deref(), Some("contacted"));
        assert_eq!(
            input.owner_id.map(|o| o.to_string()).as_deref(),
            Some("0190a000-0000-7000-8000-000000000002"),
            "the owner is mapped"
        );
        assert_eq!(
            (input.status, input.score, input.qualified),
            (Some(LeadStatus::Won), Some(-5), Some(true))
        );
        assert_eq!(
            serde_json::to_value(&input.custom_fields).unwrap(),
            json!({ "budget": 5, "lead_line": "buyer" })
        );
    }

    #[test]
    fn a_csv_record_reads_back_typed_by_the_tenant_s_definitions() {
        let header = strings(&[
            "contact_name",
            "contact_phone",
            "status",
            "score",
            "qualified",
            "current_stage",
            "owner",
            "cf_budget",
            "cf_vip",
            "cf_notes",
            "cf_unknown",
            "favourite_colour",
        ]);
        let columns = CsvColumns::parse(&header).unwrap();
        assert_eq!(columns.ignored, ["favourite_colour"]);
        let input = reader()
            .csv_record(
                &columns,
                strings(&[
                    "'=Ada",
                    "'+12065550123",
                    "lost",
                    "-5",
                    "false",
                    "new",
                    "",
                    "2.5",
                    "true",
                    "'-",
                    "7",
                    "red",
                ]),
            )
            .unwrap();
        assert_eq!(input.contact_name.as_deref(), Some("=Ada"), "unguarded");
        assert_eq!(input.status, Some(LeadStatus::Lost));
        assert_eq!((input.score, input.qualified), (Some(-5), Some(false)));
        assert_eq!(input.owner_id, None, "an empty cell is not given");
        assert_eq!(
            serde_json::to_value(&input.custom_fields).unwrap(),
            json!({ "budget": 2.5, "vip": true, "notes": "-", "unknown": "7" })
        );
    }

    #[test]
    fn bad_cells_fail_the_row_with_every_reason() {
        let columns =
            CsvColumns::parse(&strings(&["contact_email", "status", "score", "cf_budget"]))
                .unwrap();
        let errors = reader()
            .csv_record(&columns, strings(&["nope", "open", "high", "lots"]))
            .unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].starts_with("contact_email"), "{errors:?}");
        assert!(errors[1].starts_with("status must be one of"), "{errors:?}");
        assert_eq!(errors[2], "score must be a whole number (got \"high\")");
        let errors = reader()
            .csv_record(&columns, strings(&["a@example.com", "", ""]))
            .unwrap_err();
        assert_eq!(errors, ["the row has 3 cells, the header 4"]);
        // The custom field's type is the bulk rules' to refuse, when the lead is written.
        assert!(
            reader()
                .csv_record(&columns, strings(&["a@example.com", "", "", "lots"]))
                .is_ok()
        );
        assert_eq!(
            reader().json_line("[1]").unwrap_err(),
            ["a row must be a JSON object"]
        );
        assert!(reader().json_line("{").unwrap_err()[0].starts_with("not a JSON object"));
    }

    #[test]
    fn a_header_without_contacts_or_with_a_column_twice_is_refused() {
        assert!(
            CsvColumns::parse(&strings(&["id", "status"]))
                .err()
                .is_some_and(|e| e.contains("not an export of leads"))
        );
        assert!(
            CsvColumns::parse(&strings(&["contact_name", "contact_name"]))
                .err()
                .is_some_and(|e| e.contains("twice"))
        );
    }

    #[test]
    fn export_filters_are_refused_as_the_route_refuses_them() {
        assert!(export_query(&[("status", "won"), ("lead_line", "buyer")]).is_ok());
        let refused = export_query(&[("status", "open")]).unwrap_err();
        assert!(refused.contains("status"), "{refused}");
    }
}
