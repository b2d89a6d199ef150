//! Learned patterns (read-only): top ordering, similarity search with the
//! embedded hashing embedder, one pattern, roles, tenancy.

use chrono::Utc;
use iace_db::SqlStore;
use iace_domain::ports::PatternStore;
use iace_domain::{CallId, Embedding, LearnedPattern, OrgId, PatternId, PatternKind};
use iace_local::embedder::HashingEmbedder;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

fn org_id(org: &Org) -> OrgId {
    OrgId::from_uuid(uuid::Uuid::parse_str(&org.id).expect("org id"))
}

/// Stores a pattern of `org` whose trigger is embedded the way the API embeds
/// search texts, and counts `uses` calls of which `successes` succeeded.
async fn pattern(
    app: &TestApp,
    store: &SqlStore,
    org: &Org,
    kind: PatternKind,
    trigger: &str,
    uses: u32,
    successes: u32,
) -> String {
    let embedder = HashingEmbedder::new(app.config.database.embedding_dimension as usize);
    let pattern = LearnedPattern {
        id: PatternId::new(),
        org_id: org_id(org),
        kind,
        trigger: trigger.to_owned(),
        response: format!("what to say when {trigger}"),
        embedding: Some(Embedding::new(embedder.embed_text(trigger)).expect("embedding")),
        uses: 0,
        successes: 0,
        created_at: Utc::now(),
        last_used_at: None,
    };
    store.upsert(&pattern).await.expect("upsert");
    for n in 0..uses {
        store
            .record_usage(
                pattern.org_id,
                CallId::new(),
                &[pattern.id],
                n < successes,
                Utc::now(),
            )
            .await
            .expect("usage");
    }
    pattern.id.to_string()
}

fn ids(items: &Value) -> Vec<String> {
    items
        .as_array()
        .expect("array")
        .iter()
        .map(|p| p["id"].as_str().expect("id").to_owned())
        .collect()
}

fn match_ids(body: &Value) -> Vec<String> {
    body["matches"]
        .as_array()
        .expect("matches")
        .iter()
        .map(|m| m["pattern"]["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn patterns_top_search_get_roles_and_tenancy() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await;
        let store = app.store().await;
        let (a, b) = (app.org("A").await, app.org("B").await);
        let fee = pattern(
            &app,
            &store,
            &a,
            PatternKind::Resolution,
            "the caller disputes a late fee on their invoice",
            10,
            9,
        )
        .await;
        let cancel = pattern(
            &app,
            &store,
            &a,
            PatternKind::ObjectionHandling,
            "the caller wants to cancel their subscription",
            10,
            2,
        )
        .await;
        let opening = pattern(
            &app,
            &store,
            &a,
            PatternKind::Opening,
            "greet a returning customer by name",
            0,
            0,
        )
        .await;
        // Org B has a pattern with the very same trigger: A must never see it.
        let theirs = pattern(
            &app,
            &store,
            &b,
            PatternKind::Resolution,
            "the caller disputes a late fee on their invoice",
            3,
            3,
        )
        .await;

        // Top: by smoothed success rate, (s + 2) / (n + 4).
        let (s, top) = app.get("/v1/patterns/top", &a.api_key).await;
        assert_eq!(s, StatusCode::OK, "{top}");
        assert_eq!(
            ids(&top["items"]),
            vec![fee.clone(), opening.clone(), cancel.clone()]
        );
        let first = &top["items"][0];
        assert_eq!(
            (first["uses"].clone(), first["successes"].clone()),
            (json!(10), json!(9))
        );
        assert!((first["success_rate"].as_f64().expect("rate") - 11.0 / 14.0).abs() < 1e-9);
        assert!((top["items"][1]["success_rate"].as_f64().expect("rate") - 0.5).abs() < 1e-9);
        assert!(first["last_used_at"].is_string() && first["created_at"].is_string());
        assert!(top["items"][1]["last_used_at"].is_null());
        assert!(first.get("embedding").is_none(), "{first}");
        assert!(first.get("org_id").is_none(), "{first}");
        let (_, top) = app
            .get("/v1/patterns/top?min_uses=5&limit=1", &a.api_key)
            .await;
        assert_eq!(ids(&top["items"]), vec![fee.clone()]);
        let (_, top) = app.get("/v1/patterns/top?min_uses=5", &a.api_key).await;
        assert_eq!(ids(&top["items"]), vec![fee.clone(), cancel.clone()]);
        let (_, top) = app.get("/v1/patterns/top?kind=opening", &a.api_key).await;
        assert_eq!(ids(&top["items"]), vec![opening.clone()]);
        let (s, body) = app.get("/v1/patterns/top?limit=0", &a.api_key).await;
        assert_problem(
            s,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert_eq!(body["errors"][0]["field"], "limit");
        let (s, body) = app.get("/v1/patterns/top?kind=smalltalk", &a.api_key).await;
        assert_problem(s, &body, StatusCode::BAD_REQUEST, "invalid_query");

        // Search: the nearest trigger first, with its similarity.
        let (s, found) = app
            .post(
                "/v1/patterns/search",
                &a.api_key,
                json!({"text": "Caller is disputing the late fee on the invoice"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{found}");
        let found_ids = match_ids(&found);
        assert_eq!(found_ids.first(), Some(&fee), "{found}");
        assert!(
            !found_ids.contains(&theirs),
            "another org's pattern: {found}"
        );
        let similarities: Vec<f64> = found["matches"]
            .as_array()
            .expect("matches")
            .iter()
            .map(|m| m["similarity"].as_f64().expect("similarity"))
            .collect();
        assert!(similarities[0] > 0.5, "{similarities:?}");
        assert!(
            similarities.windows(2).all(|w| w[0] >= w[1]),
            "{similarities:?}"
        );
        assert!(found["matches"][0]["pattern"].get("embedding").is_none());
        let (_, found) = app
            .post(
                "/v1/patterns/search",
                &a.api_key,
                json!({"text": "cancel my subscription", "k": 1}),
            )
            .await;
        assert_eq!(match_ids(&found), vec![cancel.clone()]);
        let (_, found) = app
            .post(
                "/v1/patterns/search",
                &a.api_key,
                json!({"text": "late fee", "kind": "opening"}),
            )
            .await;
        assert_eq!(match_ids(&found), vec![opening.clone()]);
        let (s, body) = app
            .post(
                "/v1/patterns/search",
                &a.api_key,
                json!({"text": "  ", "k": 51}),
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
        assert_eq!(fields, vec![json!("text"), json!("k")]);
        let (s, body) = app
            .post(
                "/v1/patterns/search",
                &a.api_key,
                json!({"text": "x", "embedding": [1.0]}),
            )
            .await;
        assert_problem(s, &body, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");

        // One pattern.
        let (s, got) = app.get(&format!("/v1/patterns/{fee}"), &a.api_key).await;
        assert_eq!(s, StatusCode::OK, "{got}");
        assert_eq!(got["kind"], "resolution");
        assert_eq!(
            got["trigger"],
            "the caller disputes a late fee on their invoice"
        );
        assert!(got.get("embedding").is_none());
        let (s, body) = app
            .get(&format!("/v1/patterns/{}", PatternId::new()), &a.api_key)
            .await;
        assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");
        let (s, body) = app.get("/v1/patterns/nope", &a.api_key).await;
        assert_problem(s, &body, StatusCode::BAD_REQUEST, "invalid_path");

        // Credentials and roles: a viewer reads everything.
        for path in ["/v1/patterns/top".to_owned(), format!("/v1/patterns/{fee}")] {
            let (s, body, _) = app.call(Method::GET, &path, None, None).await;
            assert_problem(s, &body, StatusCode::UNAUTHORIZED, "missing_credentials");
        }
        let (s, body, _) = app
            .call(
                Method::POST,
                "/v1/patterns/search",
                None,
                Some(json!({"text": "fee"})),
            )
            .await;
        assert_problem(s, &body, StatusCode::UNAUTHORIZED, "missing_credentials");
        let (_, key) = app
            .post(
                "/v1/api-keys",
                &a.api_key,
                json!({"name": "ro", "role": "viewer"}),
            )
            .await;
        let viewer = key["secret"].as_str().expect("secret").to_owned();
        let (s, _) = app.get("/v1/patterns/top", &viewer).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = app.get(&format!("/v1/patterns/{fee}"), &viewer).await;
        assert_eq!(s, StatusCode::OK);
        let (s, found) = app
            .post("/v1/patterns/search", &viewer, json!({"text": "late fee"}))
            .await;
        assert_eq!(s, StatusCode::OK, "{found}");

        // Tenancy: B sees only its own pattern.
        let (s, body) = app.get(&format!("/v1/patterns/{fee}"), &b.api_key).await;
        assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");
        let (_, top) = app.get("/v1/patterns/top", &b.api_key).await;
        assert_eq!(ids(&top["items"]), vec![theirs.clone()]);
        let (_, found) = app
            .post(
                "/v1/patterns/search",
                &b.api_key,
                json!({"text": "cancel my subscription"}),
            )
            .await;
        assert_eq!(match_ids(&found), vec![theirs.clone()]);
    }
}
