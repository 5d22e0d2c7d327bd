//! `GET /admin/api/meta`: the lists the admin page fills its forms from, straight from the enums.

use leadbase::domain::catalog::FieldType;
use leadbase::domain::lead::LeadStatus;
use leadbase::domain::token::Scope;
use leadbase::store::delivery_queue::DeliveryStatus;
use serde_json::Value;

use crate::helpers::*;

/// The strings of a list in the response, in order.
fn strings(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|v| v.as_str().expect("a string"))
        .collect()
}

#[test]
fn meta_lists_every_value_of_each_enum_in_order() {
    let app = TestApp::spawn();
    let meta = app.admin_meta().expect(200);
    assert_eq!(
        keys(&meta),
        set_of(&[
            "lead_statuses",
            "custom_field_types",
            "scopes",
            "delivery_statuses"
        ])
    );
    let statuses: Vec<&str> = LeadStatus::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(strings(&meta["lead_statuses"]), statuses);
    let scopes: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(strings(&meta["scopes"]), scopes);
    let deliveries: Vec<&str> = DeliveryStatus::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(strings(&meta["delivery_statuses"]), deliveries);
    // Field types have no `as_str`: each name must be one the API parses back to that type.
    let types = strings(&meta["custom_field_types"]);
    assert_eq!(types.len(), FieldType::ALL.len());
    for (name, field_type) in types.iter().zip(FieldType::ALL) {
        assert_eq!(FieldType::parse(name), Ok(field_type));
    }
}

#[test]
fn meta_needs_the_admin_token() {
    let app = TestApp::spawn();
    app.req("GET", "/admin/api/meta")
        .send()
        .assert_error(401, "authentication_error");
    let key = app.tenant_with_key("Acme");
    app.req("GET", "/admin/api/meta")
        .bearer(&key.token)
        .send()
        .assert_error(401, "authentication_error");
}
