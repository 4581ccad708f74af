//! `GET /api/openapi.json`: the OpenAPI 3.0 document, rendered from the operations
//! table and the component schemas, never written by hand.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Map, Value};

use crate::auth::Access;
use crate::operations::{self, Body, In, Kind, Operation, Param};
use crate::problem::{Problem, PROBLEM_CONTENT_TYPE};
use crate::{reply, schema, ControlPlane};

/// Name of the bearer security scheme in the document.
const SECURITY_SCHEME: &str = "bearerToken";

/// What `info.description` says: the conventions every operation shares.
const DESCRIPTION: &str = "\
bosun's control plane: device registry, twins, device groups, direct methods, \
cloud-to-device messages and device events.\n\n\
Authentication: `Authorization: Bearer TOKEN`. Roles: `read-only` (reads, queries, \
events), `operator` (also creates/updates devices, patches twins, invokes methods, sends \
and purges messages, defines and deletes groups), `admin` (also deletes devices and \
creates tokens). The role each operation needs is in `x-bosun-role`.\n\n\
Errors are `application/problem+json` (RFC 9457). Listings return `{items, continuation}`; \
pass `continuation` back for the next page.";

/// Errors every operation may answer, whatever its row says.
const COMMON_ERRORS: [u16; 1] = [400];
/// Errors every operation behind a token may answer.
const AUTH_ERRORS: [u16; 2] = [401, 403];

/// The handler: the document, rendered per request (it is small and rarely fetched).
pub(crate) async fn serve<H: ControlPlane>() -> Result<Response, Problem> {
    reply::json(StatusCode::OK, &document(&operations::table::<H>()))
}

/// The document for `operations`.
pub(crate) fn document<H>(operations: &[Operation<H>]) -> Value {
    let components: Map<String, Value> = schema::components()
        .into_iter()
        .map(|(name, schema)| (name.to_owned(), schema))
        .collect();
    let mut paths = Map::new();
    for op in operations {
        let item = paths
            .entry(op.path)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(item) = item {
            item.insert(
                op.verb.name().to_ascii_lowercase(),
                operation(op, &components),
            );
        }
    }
    let mut tags: Vec<&str> = Vec::new();
    for op in operations {
        if !tags.contains(&op.tag) {
            tags.push(op.tag);
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "bosun API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": DESCRIPTION,
        },
        "tags": tags.iter().map(|t| json!({ "name": t })).collect::<Vec<_>>(),
        "security": [{ SECURITY_SCHEME: [] }],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                SECURITY_SCHEME: { "type": "http", "scheme": "bearer" },
            },
        },
    })
}

/// One operation object.
fn operation<H>(op: &Operation<H>, components: &Map<String, Value>) -> Value {
    let mut out = json!({
        "operationId": op.id,
        "summary": op.summary,
        "tags": [op.tag],
        "responses": responses(op),
    });
    match op.access {
        Access::Public => {
            out["security"] = json!([]);
            out["x-bosun-role"] = json!("none");
        }
        Access::Role(role) | Access::RoleOrPresigned(role) => out["x-bosun-role"] = json!(role),
    }
    if !op.params.is_empty() {
        out["parameters"] = op.params.iter().map(parameter).collect();
    }
    if let Some(name) = op.request {
        // A body is required when its schema requires any member; otherwise an empty
        // body means "all defaults".
        let required = components
            .get(name)
            .and_then(|s| s.get("required"))
            .and_then(Value::as_array)
            .is_some_and(|r| !r.is_empty());
        out["requestBody"] = json!({
            "required": required,
            "content": { "application/json": { "schema": schema::reference(name) } },
        });
    }
    out
}

/// The `responses` object: success, then errors.
fn responses<H>(op: &Operation<H>) -> Value {
    let mut out = Map::new();
    let mut success = json!({ "description": reason(op.status) });
    match op.response {
        Body::Empty => {}
        Body::Json(name) => {
            success["content"] =
                json!({ "application/json": { "schema": schema::reference(name) } });
        }
        Body::Binary(description) => {
            success["content"] = json!({
                "application/octet-stream": {
                    "schema": { "type": "string", "format": "binary", "description": description },
                },
            });
        }
        Body::EventStream(name) => {
            success["content"] = json!({
                "text/event-stream": {
                    "schema": { "type": "string", "description": format!("Each event's data is a {name} in JSON.") },
                    "x-bosun-event-data": schema::reference(name),
                },
            });
        }
    }
    if !op.response_headers.is_empty() {
        let headers: Map<String, Value> = op
            .response_headers
            .iter()
            .map(|(name, description)| {
                (
                    (*name).to_owned(),
                    json!({ "description": description, "schema": { "type": "string" } }),
                )
            })
            .collect();
        success["headers"] = Value::Object(headers);
    }
    out.insert(op.status.to_string(), success);
    let auth: &[u16] = match op.access {
        Access::Public => &[],
        Access::Role(_) | Access::RoleOrPresigned(_) => &AUTH_ERRORS,
    };
    let mut errors: Vec<u16> = COMMON_ERRORS
        .iter()
        .chain(auth)
        .chain(op.errors)
        .copied()
        .collect();
    errors.sort_unstable();
    errors.dedup();
    for status in errors {
        out.insert(
            status.to_string(),
            json!({
                "description": reason(status),
                "content": { PROBLEM_CONTENT_TYPE: { "schema": schema::reference("Problem") } },
            }),
        );
    }
    Value::Object(out)
}

/// One parameter object.
fn parameter(param: &Param) -> Value {
    let location = match param.location {
        In::Path => "path",
        In::Query => "query",
        In::Header => "header",
    };
    let schema = match param.kind {
        Kind::Text => json!({ "type": "string" }),
        Kind::Integer { min, max } => json!({ "type": "integer", "minimum": min, "maximum": max }),
        Kind::OneOf(words) => json!({ "type": "string", "enum": words }),
    };
    json!({
        "name": param.name,
        "in": location,
        "required": param.location == In::Path,
        "description": param.description,
        "schema": schema,
    })
}

/// The reason phrase of `status`, as the response description.
fn reason(status: u16) -> String {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Response")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::fake::Fake;
    use crate::operations::Verb;
    use crate::testing::Client;

    fn doc() -> Value {
        document(&operations::table::<Fake>())
    }

    /// Every `$ref` in `value`.
    fn refs(value: &Value, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    if key == "$ref" {
                        if let Some(r) = v.as_str() {
                            out.insert(r.trim_start_matches("#/components/schemas/").to_owned());
                        }
                    }
                    refs(v, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves_and_every_schema_is_used() {
        let doc = doc();
        let mut used = BTreeSet::new();
        refs(&doc["paths"], &mut used);
        let mut in_schemas = BTreeSet::new();
        refs(&doc["components"]["schemas"], &mut in_schemas);
        used.extend(in_schemas);
        let defined: BTreeSet<String> = doc["components"]["schemas"]
            .as_object()
            .expect("schemas")
            .keys()
            .cloned()
            .collect();
        assert_eq!(used, defined);
    }

    #[test]
    fn path_templates_and_path_parameters_agree() {
        for op in operations::table::<Fake>() {
            let in_template: BTreeSet<&str> = op
                .path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .collect();
            let declared: BTreeSet<&str> = op
                .params
                .iter()
                .filter(|p| p.location == In::Path)
                .map(|p| p.name)
                .collect();
            assert_eq!(in_template, declared, "{}", op.id);
        }
    }

    #[test]
    fn operation_ids_are_unique_and_paths_are_under_api() {
        let table = operations::table::<Fake>();
        let ids: BTreeSet<&str> = table.iter().map(|op| op.id).collect();
        assert_eq!(ids.len(), table.len());
        let routes: BTreeSet<(&str, Verb)> = table.iter().map(|op| (op.path, op.verb)).collect();
        assert_eq!(routes.len(), table.len(), "two rows for one route");
        assert!(table.iter().all(|op| op.path.starts_with("/api/")));
    }

    /// `crates/api/openapi.json` is the document as generated, checked in so that API
    /// changes show up in review and external tools can read it without a running hub.
    /// Fails when it is stale; `BOSUN_UPDATE_OPENAPI=1 cargo test -p bosun-api` rewrites it.
    #[test]
    fn checked_in_document_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
        let current = serde_json::to_string_pretty(&doc()).expect("serializes") + "\n";
        if std::env::var_os("BOSUN_UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, &current).expect("writes openapi.json");
            return;
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == current,
            "{} is stale: run BOSUN_UPDATE_OPENAPI=1 cargo test -p bosun-api",
            path.display()
        );
    }

    #[test]
    fn document_has_the_expected_shape() {
        let doc = doc();
        assert_eq!(doc["openapi"], "3.0.3");
        let twin_patch = &doc["paths"]["/api/devices/{id}/twin"]["patch"];
        assert_eq!(twin_patch["x-bosun-role"], "operator");
        assert!(twin_patch["responses"]["412"].is_object());
        assert!(twin_patch["responses"]["200"]["headers"]["ETag"].is_object());
        assert_eq!(
            doc["paths"]["/api/devices/{id}"]["delete"]["x-bosun-role"],
            "admin"
        );
        assert_eq!(
            doc["paths"]["/api/openapi.json"]["get"]["security"],
            json!([])
        );
        let invoke = &doc["paths"]["/api/devices/{id}/methods/{name}"]["post"];
        assert_eq!(invoke["requestBody"]["required"], false);
        assert_eq!(
            doc["paths"]["/api/devices"]["post"]["requestBody"]["required"],
            true
        );
    }

    /// Probes the real router with every method on every path (documented or not):
    /// a route answers 404/405 exactly when the document does not have it.
    #[tokio::test]
    async fn router_and_document_list_the_same_routes() {
        let doc = doc();
        let client = Client::new();
        let paths = doc["paths"].as_object().expect("paths");
        let mut probed = 0;
        for (template, item) in paths {
            let path = template.replace("{id}", "d1").replace("{name}", "reboot");
            for verb in ["get", "post", "patch", "delete", "put"] {
                let documented = item.get(verb).is_some();
                let response = client
                    .send_raw(&verb.to_ascii_uppercase(), &path, None, None)
                    .await;
                let routed = !matches!(response.status, 404 | 405);
                assert_eq!(
                    routed, documented,
                    "{verb} {template}: router says {}, document says {documented}",
                    response.status
                );
                if response.status == 405 {
                    assert!(response.header("allow").is_some(), "{verb} {template}");
                }
                probed += 1;
            }
        }
        assert!(probed >= 5 * operations::table::<Fake>().len() / 2);
        for undocumented in ["/api", "/api/", "/api/nope", "/api/devices/d1/nope"] {
            let response = client.send_raw("GET", undocumented, None, None).await;
            assert_eq!(response.status, 404, "{undocumented}");
            assert_eq!(response.json["type"], "urn:bosun:problem:no-such-route");
        }
    }
}
