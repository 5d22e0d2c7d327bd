//! What `leadbase export` (spec §14) shares with the routes: the export's filters and
//! rendering.

use serde_json::{Map, Value};

use super::pull::ListParams;
use crate::store::lead_query::LeadQuery;

pub(crate) use super::export::{Format, Rendering};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_filters_are_refused_as_the_route_refuses_them() {
        assert!(export_query(&[("status", "won"), ("lead_line", "buyer")]).is_ok());
        let refused = export_query(&[("status", "open")]).unwrap_err();
        assert!(refused.contains("status"), "{refused}");
    }
}
