//! Customers: CRUD, validation, pagination, roles, tenancy.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn customers_crud_validation_and_tenancy() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await;
        let (a, b) = (app.org("A").await, app.org("B").await);
        let (s, c) = app
            .post("/v1/customers", &a.api_key, json!({"phone": "+1 (415) 555-0100", "name": "Jane", "tier": "vip", "attributes": {"account": "A-1"}}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        assert_eq!(c["phone"], "+14155550100");
        assert_eq!(c["tier"], "vip");
        let id = c["id"].as_str().expect("id").to_owned();

        let (s, body) = app
            .post(
                "/v1/customers",
                &a.api_key,
                json!({"phone": "not a number", "email": "nope", "language": "klingon-9"}),
            )
            .await;
        assert_problem(
            s,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        let fields: Vec<_> = body["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| e["field"].clone())
            .collect();
        assert_eq!(
            fields,
            vec![json!("phone"), json!("email"), json!("language")]
        );
        let (s, body) = app
            .post(
                "/v1/customers",
                &a.api_key,
                json!({"phone": "+14155550100"}),
            )
            .await;
        assert_problem(s, &body, StatusCode::CONFLICT, "already_exists");
        let (s, body) = app
            .post(
                "/v1/customers",
                &a.api_key,
                json!({"phone": "+14155550101", "surprise": 1}),
            )
            .await;
        assert_eq!(
            s,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown fields are rejected: {body}"
        );

        let (s, got) = app.get(&format!("/v1/customers/{id}"), &a.api_key).await;
        assert_eq!((s, got["name"].clone()), (StatusCode::OK, json!("Jane")));
        let (s, found) = app
            .get(
                "/v1/customers/lookup?phone=%2B1%20415%20555%200100",
                &a.api_key,
            )
            .await;
        assert_eq!((s, found["id"].clone()), (StatusCode::OK, json!(id)));
        let (s, updated, _) = app
            .call(
                Method::PUT,
                &format!("/v1/customers/{id}"),
                Some(&a.api_key),
                Some(json!({"phone": "+14155550111", "name": "Jane R."})),
            )
            .await;
        assert_eq!(
            (s, updated["phone"].clone()),
            (StatusCode::OK, json!("+14155550111")),
            "{updated}"
        );
        let (s, memory) = app
            .get(&format!("/v1/customers/{id}/memory"), &a.api_key)
            .await;
        assert_eq!(s, StatusCode::OK, "{memory}");
        assert_eq!(memory["memory_ids"], json!([]));

        // Org B sees nothing of org A.
        let (s, body) = app.get(&format!("/v1/customers/{id}"), &b.api_key).await;
        assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");
        let (s, list) = app.get("/v1/customers", &b.api_key).await;
        assert_eq!((s, list["items"].clone()), (StatusCode::OK, json!([])));
        let (s, _, _) = app
            .call(
                Method::PUT,
                &format!("/v1/customers/{id}"),
                Some(&b.api_key),
                Some(json!({"phone": "+14155550122"})),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _, _) = app
            .call(
                Method::DELETE,
                &format!("/v1/customers/{id}"),
                Some(&b.api_key),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);

        // Pagination with opaque cursors.
        for n in 0..4 {
            let (s, _) = app
                .post(
                    "/v1/customers",
                    &a.api_key,
                    json!({"phone": format!("+1415555020{n}")}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED);
        }
        let (s, page) = app.get("/v1/customers?limit=3", &a.api_key).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(page["items"].as_array().map(Vec::len), Some(3));
        let cursor = page["next_cursor"].as_str().expect("cursor");
        let (_, rest) = app
            .get(
                &format!("/v1/customers?limit=3&cursor={cursor}"),
                &a.api_key,
            )
            .await;
        assert_eq!(rest["items"].as_array().map(Vec::len), Some(2));
        assert!(rest["next_cursor"].is_null());
        let (s, body) = app.get("/v1/customers?cursor=garbage", &a.api_key).await;
        assert_problem(
            s,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        let (s, body) = app.get("/v1/customers?limit=0", &a.api_key).await;
        assert_problem(
            s,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        let (s, body) = app.get("/v1/customers/not-a-uuid", &a.api_key).await;
        assert_problem(s, &body, StatusCode::BAD_REQUEST, "invalid_path");

        // Roles: a viewer reads but cannot write.
        let (_, viewer) = app
            .post(
                "/v1/api-keys",
                &a.api_key,
                json!({"name": "ro", "role": "viewer"}),
            )
            .await;
        let viewer = viewer["secret"].as_str().expect("secret").to_owned();
        let (s, _) = app.get(&format!("/v1/customers/{id}"), &viewer).await;
        assert_eq!(s, StatusCode::OK);
        let (s, body) = app
            .post("/v1/customers", &viewer, json!({"phone": "+14155550999"}))
            .await;
        assert_problem(s, &body, StatusCode::FORBIDDEN, "forbidden");
        let (s, _, _) = app
            .call(
                Method::DELETE,
                &format!("/v1/customers/{id}"),
                Some(&a.api_key),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _) = app.get(&format!("/v1/customers/{id}"), &a.api_key).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
}
