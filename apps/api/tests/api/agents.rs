//! Human agents: CRUD, availability, validation, roles, tenancy.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

fn fields(body: &Value) -> Vec<Value> {
    body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].clone())
        .collect()
}

async fn key_with_role(app: &TestApp, org: &Org, role: &str) -> String {
    let (s, key) = app
        .post(
            "/v1/api-keys",
            &org.api_key,
            json!({"name": role, "role": role}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{key}");
    key["secret"].as_str().expect("secret").to_owned()
}

#[tokio::test]
async fn agents_crud_availability_and_tenancy() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await;
        let (a, b) = (app.org("A").await, app.org("B").await);

        let (s, agent) = app
            .post(
                "/v1/agents",
                &a.api_key,
                json!({
                    "name": "  Ana Lima ",
                    "email": "ana@example.com",
                    "phone": "+1 (415) 555-0123",
                    "skills": ["Billing", "spanish", "billing"],
                    "max_concurrent_calls": 2
                }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{agent}");
        assert_eq!(agent["name"], "Ana Lima");
        assert_eq!(agent["phone"], "+14155550123");
        assert_eq!(agent["email"], "ana@example.com");
        assert_eq!(agent["sip_uri"], Value::Null);
        assert_eq!(agent["skills"], json!(["billing", "spanish"]));
        assert_eq!(agent["availability"], "offline");
        assert_eq!(agent["max_concurrent_calls"], 2);
        assert_eq!(agent["active_calls"], 0);
        let id = agent["id"].as_str().expect("id").to_owned();

        // A SIP-only agent gets the default capacity.
        let (s, sip) = app
            .post(
                "/v1/agents",
                &a.api_key,
                json!({"name": "Desk 2", "sip_uri": "sips:desk2@pbx.example.com"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{sip}");
        assert_eq!(sip["max_concurrent_calls"], 1);
        assert_eq!(sip["skills"], json!([]));

        let (s, got) = app.get(&format!("/v1/agents/{id}"), &a.api_key).await;
        assert_eq!(
            (s, got["name"].clone()),
            (StatusCode::OK, json!("Ana Lima"))
        );
        let (s, list) = app.get("/v1/agents", &a.api_key).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(list["items"].as_array().map(Vec::len), Some(2));
        assert!(list["next_cursor"].is_null());
        let (s, page) = app.get("/v1/agents?limit=1", &a.api_key).await;
        assert_eq!(s, StatusCode::OK);
        let cursor = page["next_cursor"].as_str().expect("cursor");
        let (_, rest) = app
            .get(&format!("/v1/agents?limit=1&cursor={cursor}"), &a.api_key)
            .await;
        assert_eq!(rest["items"][0]["id"], sip["id"]);

        // Availability, then a full replace that keeps it.
        let (s, changed, _) = app
            .call(
                Method::PATCH,
                &format!("/v1/agents/{id}/availability"),
                Some(&a.api_key),
                Some(json!({"availability": "available"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{changed}");
        assert_eq!(changed["availability"], "available");
        let (s, body, _) = app
            .call(
                Method::PATCH,
                &format!("/v1/agents/{id}/availability"),
                Some(&a.api_key),
                Some(json!({"availability": "busy"})),
            )
            .await;
        assert_problem(s, &body, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
        let (s, updated, _) = app
            .call(
                Method::PUT,
                &format!("/v1/agents/{id}"),
                Some(&a.api_key),
                Some(json!({
                    "name": "Ana L.",
                    "sip_uri": "sip:ana@pbx.example.com",
                    "skills": ["vip"],
                    "max_concurrent_calls": 3
                })),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{updated}");
        assert_eq!(updated["phone"], Value::Null, "PUT replaces every field");
        assert_eq!(updated["email"], Value::Null);
        assert_eq!(updated["sip_uri"], "sip:ana@pbx.example.com");
        assert_eq!(updated["skills"], json!(["vip"]));
        assert_eq!(updated["availability"], "available");
        let (_, got) = app.get(&format!("/v1/agents/{id}"), &a.api_key).await;
        assert_eq!(got, updated, "the replace was stored");

        // Org B sees nothing of org A.
        let (s, body) = app.get(&format!("/v1/agents/{id}"), &b.api_key).await;
        assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");
        let (s, list) = app.get("/v1/agents", &b.api_key).await;
        assert_eq!((s, list["items"].clone()), (StatusCode::OK, json!([])));
        let (s, body, _) = app
            .call(
                Method::PUT,
                &format!("/v1/agents/{id}"),
                Some(&b.api_key),
                Some(json!({"name": "Mine", "sip_uri": "sip:x@y"})),
            )
            .await;
        assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");
        let (s, body, _) = app
            .call(
                Method::PATCH,
                &format!("/v1/agents/{id}/availability"),
                Some(&b.api_key),
                Some(json!({"availability": "away"})),
            )
            .await;
        assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");
        let (s, body, _) = app
            .call(
                Method::DELETE,
                &format!("/v1/agents/{id}"),
                Some(&b.api_key),
                None,
            )
            .await;
        assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");

        // Unknown and malformed ids.
        let missing = uuid::Uuid::now_v7();
        let (s, body) = app.get(&format!("/v1/agents/{missing}"), &a.api_key).await;
        assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");
        let (s, body) = app.get("/v1/agents/not-a-uuid", &a.api_key).await;
        assert_problem(s, &body, StatusCode::BAD_REQUEST, "invalid_path");

        // Delete.
        let (s, _, _) = app
            .call(
                Method::DELETE,
                &format!("/v1/agents/{id}"),
                Some(&a.api_key),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, body) = app.get(&format!("/v1/agents/{id}"), &a.api_key).await;
        assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");
        let (s, body, _) = app
            .call(
                Method::DELETE,
                &format!("/v1/agents/{id}"),
                Some(&a.api_key),
                None,
            )
            .await;
        assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");
    }
}

#[tokio::test]
async fn agent_fields_are_validated_all_at_once() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await;
        let a = app.org("A").await;

        let (s, body) = app
            .post(
                "/v1/agents",
                &a.api_key,
                json!({
                    "name": "x".repeat(101),
                    "email": "nope",
                    "phone": "12",
                    "sip_uri": "http://pbx.example.com",
                    "skills": ["billing", "ok", "two words", ""],
                    "max_concurrent_calls": 51
                }),
            )
            .await;
        assert_problem(
            s,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert_eq!(
            fields(&body),
            vec![
                json!("name"),
                json!("email"),
                json!("phone"),
                json!("sip_uri"),
                json!("skills[2]"),
                json!("skills[3]"),
                json!("max_concurrent_calls"),
            ],
            "{body}"
        );

        // Neither a phone nor a SIP URI: an error on both.
        let (s, body) = app
            .post("/v1/agents", &a.api_key, json!({"name": "Nobody"}))
            .await;
        assert_problem(
            s,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert_eq!(fields(&body), vec![json!("phone"), json!("sip_uri")]);
        assert_eq!(body["errors"][0]["code"], "phone_or_sip_uri_required");

        for (extra, field) in [
            (json!({"name": "   "}), "name"),
            (json!({"max_concurrent_calls": 0}), "max_concurrent_calls"),
            (json!({"max_concurrent_calls": -5}), "max_concurrent_calls"),
            (
                json!({"max_concurrent_calls": 10_000_000_000_i64}),
                "max_concurrent_calls",
            ),
            (
                json!({"sip_uri": format!("sip:{}", "a".repeat(255))}),
                "sip_uri",
            ),
            (json!({"sip_uri": "sip:"}), "sip_uri"),
        ] {
            let mut request = json!({"name": "Ana", "phone": "+14155550123"});
            for (k, v) in extra.as_object().expect("object") {
                request[k] = v.clone();
            }
            let (s, body) = app.post("/v1/agents", &a.api_key, request).await;
            assert_problem(
                s,
                &body,
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
            );
            assert_eq!(fields(&body), vec![json!(field)], "{body}");
        }

        // The same rules on a replace.
        let (s, agent) = app
            .post(
                "/v1/agents",
                &a.api_key,
                json!({"name": "Ana", "phone": "+14155550123"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{agent}");
        let id = agent["id"].as_str().expect("id");
        let (s, body, _) = app
            .call(
                Method::PUT,
                &format!("/v1/agents/{id}"),
                Some(&a.api_key),
                Some(json!({"name": "Ana", "skills": ["a b"]})),
            )
            .await;
        assert_problem(
            s,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert_eq!(
            fields(&body),
            vec![json!("phone"), json!("sip_uri"), json!("skills[0]")]
        );

        // Unknown and read-only fields are refused.
        for extra in [json!({"active_calls": 3}), json!({"availability": "away"})] {
            let mut request = json!({"name": "Ana", "phone": "+14155550123"});
            for (k, v) in extra.as_object().expect("object") {
                request[k] = v.clone();
            }
            let (s, body) = app.post("/v1/agents", &a.api_key, request).await;
            assert_problem(s, &body, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
        }
        let (s, body, _) = app
            .call(
                Method::PATCH,
                &format!("/v1/agents/{id}/availability"),
                Some(&a.api_key),
                Some(json!({})),
            )
            .await;
        assert_problem(s, &body, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
        let (s, body) = app.get("/v1/agents?limit=0", &a.api_key).await;
        assert_problem(
            s,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
}

#[tokio::test]
async fn agent_routes_need_credentials_and_roles() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await;
        let a = app.org("A").await;
        let (s, agent) = app
            .post(
                "/v1/agents",
                &a.api_key,
                json!({"name": "Ana", "phone": "+14155550123"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{agent}");
        let id = agent["id"].as_str().expect("id").to_owned();
        let item = format!("/v1/agents/{id}");
        let availability = format!("/v1/agents/{id}/availability");
        let valid = json!({"name": "Ana", "phone": "+14155550123"});

        // No token: 401 on every route.
        for (method, path, body) in [
            (Method::POST, "/v1/agents", Some(valid.clone())),
            (Method::GET, "/v1/agents", None),
            (Method::GET, item.as_str(), None),
            (Method::PUT, item.as_str(), Some(valid.clone())),
            (Method::DELETE, item.as_str(), None),
            (
                Method::PATCH,
                availability.as_str(),
                Some(json!({"availability": "away"})),
            ),
        ] {
            let (s, body, headers) = app.call(method.clone(), path, None, body).await;
            assert_problem(s, &body, StatusCode::UNAUTHORIZED, "missing_credentials");
            assert_eq!(headers["www-authenticate"], "Bearer", "{method} {path}");
        }

        // A viewer reads but does not write.
        let viewer = key_with_role(&app, &a, "viewer").await;
        let (s, _) = app.get(&item, &viewer).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = app.get("/v1/agents", &viewer).await;
        assert_eq!(s, StatusCode::OK);
        for (method, path, body) in [
            (Method::POST, "/v1/agents", Some(valid.clone())),
            (Method::PUT, item.as_str(), Some(valid.clone())),
            (
                Method::PATCH,
                availability.as_str(),
                Some(json!({"availability": "away"})),
            ),
            (Method::DELETE, item.as_str(), None),
        ] {
            let (s, body, _) = app.call(method, path, Some(&viewer), body).await;
            assert_problem(s, &body, StatusCode::FORBIDDEN, "forbidden");
        }

        // A member writes but does not delete.
        let member = key_with_role(&app, &a, "member").await;
        let (s, changed, _) = app
            .call(
                Method::PATCH,
                &availability,
                Some(&member),
                Some(json!({"availability": "away"})),
            )
            .await;
        assert_eq!(
            (s, changed["availability"].clone()),
            (StatusCode::OK, json!("away"))
        );
        let (s, _, _) = app
            .call(Method::PUT, &item, Some(&member), Some(valid.clone()))
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, body, _) = app.call(Method::DELETE, &item, Some(&member), None).await;
        assert_problem(s, &body, StatusCode::FORBIDDEN, "forbidden");
        assert!(
            body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("admin")
        );

        // An admin deletes.
        let admin = key_with_role(&app, &a, "admin").await;
        let (s, _, _) = app.call(Method::DELETE, &item, Some(&admin), None).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
    }
}
