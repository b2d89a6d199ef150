//! Experiments: create/replace with validation, life cycle and its 409s,
//! results computed from outcomes recorded through the store, roles, tenancy.

use chrono::Utc;
use iace_db::SqlStore;
use iace_domain::ports::{ExperimentRepository, PersonaRepository};
use iace_domain::{
    CallId, ExperimentId, Language, OrgId, Persona, PersonaId, Style, VariantId, Voice,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

fn org_id(org: &Org) -> OrgId {
    OrgId::from_uuid(uuid::Uuid::parse_str(&org.id).expect("org id"))
}

/// A persona of `org`, created through the store (personas have no routes yet).
async fn persona(store: &SqlStore, org: &Org, name: &str) -> String {
    let now = Utc::now();
    let persona = Persona {
        id: PersonaId::new(),
        org_id: org_id(org),
        name: name.to_owned(),
        voice: Voice {
            name: "aura-2-thalia-en".to_owned(),
            speed: 1.0,
        },
        system_prompt: "You help callers with their bills.".to_owned(),
        greeting: "Hello!".to_owned(),
        style: Style::Friendly,
        language: Language::parse("en-US").expect("language"),
        created_at: now,
        updated_at: now,
    };
    PersonaRepository::create(store, &persona)
        .await
        .expect("persona");
    persona.id.to_string()
}

fn experiment_body(name: &str, control: &str, treatment: &str) -> Value {
    json!({
        "name": name,
        "metric": "conversion",
        "variants": [
            {"name": "control", "persona_id": control, "weight": 50, "is_control": true},
            {"name": "friendly", "persona_id": treatment, "weight": 50},
        ],
    })
}

fn field_codes(body: &Value) -> Vec<(String, String)> {
    body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["field"].as_str().expect("field").to_owned(),
                e["code"].as_str().expect("code").to_owned(),
            )
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(f, c)| ((*f).to_owned(), (*c).to_owned()))
        .collect()
}

async fn viewer_key(app: &TestApp, org: &Org) -> String {
    let (s, key) = app
        .post(
            "/v1/api-keys",
            &org.api_key,
            json!({"name": "ro", "role": "viewer"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{key}");
    key["secret"].as_str().expect("secret").to_owned()
}

async fn put(app: &TestApp, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    let (s, v, _) = app.call(Method::PUT, path, Some(token), Some(body)).await;
    (s, v)
}

async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let (s, e) = app.post("/v1/experiments", token, body).await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    e
}

#[tokio::test]
async fn experiments_validation_life_cycle_roles_and_tenancy() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await;
        let store = app.store().await;
        let (a, b) = (app.org("A").await, app.org("B").await);
        let (p1, p2) = (
            persona(&store, &a, "Sam").await,
            persona(&store, &a, "Alex").await,
        );

        // 401 without credentials.
        let (s, body, _) = app
            .call(
                Method::POST,
                "/v1/experiments",
                None,
                Some(experiment_body("x", &p1, &p2)),
            )
            .await;
        assert_problem(s, &body, StatusCode::UNAUTHORIZED, "missing_credentials");

        // Create: a draft with a generated salt and variant ids.
        let e = create(&app, &a.api_key, experiment_body(" Greeting ", &p1, &p2)).await;
        assert_eq!(e["status"], "draft");
        assert_eq!(e["name"], "Greeting");
        assert_eq!(e["metric"], "conversion");
        assert!(e["salt"].as_str().expect("salt").len() >= 16, "{e}");
        assert_eq!(e["variants"][0]["is_control"], true);
        assert_eq!(e["variants"][1]["persona_id"], json!(p2));
        assert!(e["started_at"].is_null() && e["ended_at"].is_null());
        let id = e["id"].as_str().expect("id").to_owned();
        let given = create(
            &app,
            &a.api_key,
            json!({"name": "salted", "salt": "fixed-salt", "metric": "positive_sentiment",
                   "variants": experiment_body("", &p1, &p2)["variants"]}),
        )
        .await;
        assert_eq!(
            (given["salt"].clone(), given["metric"].clone()),
            (json!("fixed-salt"), json!("positive_sentiment"))
        );

        // Validation: every invalid field at once.
        let unknown = PersonaId::new().to_string();
        let (s, body) = app
            .post(
                "/v1/experiments",
                &a.api_key,
                json!({"name": "", "metric": "conversion", "variants": [
                    {"name": "a", "persona_id": p1, "weight": 1},
                    {"name": "b", "persona_id": unknown, "weight": 1},
                ]}),
            )
            .await;
        assert_problem(
            s,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert_eq!(
            field_codes(&body),
            pairs(&[
                ("name", "required"),
                ("variants", "no_control"),
                ("variants[1].persona_id", "unknown_persona"),
            ])
        );
        let (s, body) = app
            .post(
                "/v1/experiments",
                &a.api_key,
                json!({"name": "x", "metric": "conversion", "variants": [
                    {"name": "a", "persona_id": p1, "weight": 0, "is_control": true},
                ]}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(
            field_codes(&body),
            pairs(&[("variants", "too_few_variants")])
        );
        let mut duplicate = experiment_body("dup", &p1, &p2);
        duplicate["variants"][1]["name"] = json!(" CONTROL ");
        let (_, body) = app.post("/v1/experiments", &a.api_key, duplicate).await;
        assert_eq!(
            field_codes(&body),
            pairs(&[("variants", "duplicate_variant_name")])
        );
        let (s, body) = app
            .post(
                "/v1/experiments",
                &a.api_key,
                experiment_body("bad id", "not-a-uuid", &p2),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(
            field_codes(&body),
            pairs(&[("variants[0].persona_id", "invalid_id")])
        );
        let mut bad_metric = experiment_body("m", &p1, &p2);
        bad_metric["metric"] = json!("revenue");
        let (s, body) = app.post("/v1/experiments", &a.api_key, bad_metric).await;
        assert_problem(s, &body, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
        let mut extra = experiment_body("m", &p1, &p2);
        extra["status"] = json!("running");
        let (s, body) = app.post("/v1/experiments", &a.api_key, extra).await;
        assert_problem(s, &body, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");

        // Read.
        let (s, got) = app.get(&format!("/v1/experiments/{id}"), &a.api_key).await;
        assert_eq!((s, got["id"].clone()), (StatusCode::OK, json!(id)));
        let (s, list) = app.get("/v1/experiments?limit=1", &a.api_key).await;
        assert_eq!(s, StatusCode::OK, "{list}");
        assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
        assert!(list["next_cursor"].is_string());
        let (s, body) = app
            .get(
                &format!("/v1/experiments/{}", ExperimentId::new()),
                &a.api_key,
            )
            .await;
        assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");
        let (s, body) = app.get("/v1/experiments/nope", &a.api_key).await;
        assert_problem(s, &body, StatusCode::BAD_REQUEST, "invalid_path");

        // Replace while a draft: the control keeps its id, the renamed arm is new.
        let mut replacement = experiment_body("Greeting v2", &p1, &p1);
        replacement["variants"][1]["name"] = json!("concise");
        replacement["metric"] = json!("resolved_without_escalation");
        let (s, replaced) = put(
            &app,
            &format!("/v1/experiments/{id}"),
            &a.api_key,
            replacement.clone(),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{replaced}");
        assert_eq!(replaced["name"], "Greeting v2");
        assert_eq!(replaced["metric"], "resolved_without_escalation");
        assert_eq!(replaced["salt"], e["salt"], "the salt is kept");
        assert_eq!(replaced["variants"][0]["id"], e["variants"][0]["id"]);
        assert_eq!(replaced["variants"][1]["name"], "concise");
        let (_, stored) = app.get(&format!("/v1/experiments/{id}"), &a.api_key).await;
        assert_eq!(stored["variants"], replaced["variants"]);
        let (s, body) = put(
            &app,
            &format!("/v1/experiments/{id}"),
            &a.api_key,
            json!({"name": "x", "metric": "conversion", "variants": []}),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

        // Life cycle.
        let (s, body) = app
            .post(&format!("/v1/experiments/{id}/stop"), &a.api_key, json!({}))
            .await;
        assert_problem(s, &body, StatusCode::CONFLICT, "invalid_experiment_state");
        let (s, body) = app
            .post(
                &format!("/v1/experiments/{id}/pause"),
                &a.api_key,
                json!({}),
            )
            .await;
        assert_problem(s, &body, StatusCode::CONFLICT, "invalid_experiment_state");
        let (s, running) = app
            .post(
                &format!("/v1/experiments/{id}/start"),
                &a.api_key,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{running}");
        assert_eq!(running["status"], "running");
        assert!(running["started_at"].is_string(), "{running}");
        // As stored (the store may keep fewer fractional digits than the clock).
        let (_, stored) = app.get(&format!("/v1/experiments/{id}"), &a.api_key).await;
        let started_at = stored["started_at"].clone();
        let (s, body) = app
            .post(
                &format!("/v1/experiments/{id}/start"),
                &a.api_key,
                json!({}),
            )
            .await;
        assert_problem(s, &body, StatusCode::CONFLICT, "invalid_experiment_state");
        let (s, body) = put(
            &app,
            &format!("/v1/experiments/{id}"),
            &a.api_key,
            replacement.clone(),
        )
        .await;
        assert_problem(s, &body, StatusCode::CONFLICT, "experiment_not_draft");
        let (s, paused) = app
            .post(
                &format!("/v1/experiments/{id}/pause"),
                &a.api_key,
                json!({}),
            )
            .await;
        assert_eq!(
            (s, paused["status"].clone()),
            (StatusCode::OK, json!("paused"))
        );
        let (_, resumed) = app
            .post(
                &format!("/v1/experiments/{id}/start"),
                &a.api_key,
                json!({}),
            )
            .await;
        assert_eq!(resumed["status"], "running");
        assert_eq!(resumed["status"], "running");
        let (_, stored) = app.get(&format!("/v1/experiments/{id}"), &a.api_key).await;
        assert_eq!(stored["started_at"], started_at, "set once");
        let (s, done) = app
            .post(&format!("/v1/experiments/{id}/stop"), &a.api_key, json!({}))
            .await;
        assert_eq!(s, StatusCode::OK, "{done}");
        assert_eq!(done["status"], "completed");
        assert!(done["ended_at"].is_string(), "{done}");
        for action in ["start", "stop", "pause"] {
            let (s, body) = app
                .post(
                    &format!("/v1/experiments/{id}/{action}"),
                    &a.api_key,
                    json!({}),
                )
                .await;
            assert_problem(s, &body, StatusCode::CONFLICT, "invalid_experiment_state");
        }
        let (s, body) = app
            .post(
                &format!("/v1/experiments/{}/start", ExperimentId::new()),
                &a.api_key,
                json!({}),
            )
            .await;
        assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");

        // Roles: a viewer reads (results included) but cannot write.
        let viewer = viewer_key(&app, &a).await;
        let draft = given["id"].as_str().expect("id");
        let (s, _) = app.get(&format!("/v1/experiments/{draft}"), &viewer).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = app.get("/v1/experiments", &viewer).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = app
            .get(&format!("/v1/experiments/{draft}/results"), &viewer)
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, body) = app
            .post("/v1/experiments", &viewer, experiment_body("v", &p1, &p2))
            .await;
        assert_problem(s, &body, StatusCode::FORBIDDEN, "forbidden");
        let (s, body) = app
            .post(
                &format!("/v1/experiments/{draft}/start"),
                &viewer,
                json!({}),
            )
            .await;
        assert_problem(s, &body, StatusCode::FORBIDDEN, "forbidden");
        let (s, body) = put(
            &app,
            &format!("/v1/experiments/{draft}"),
            &viewer,
            replacement.clone(),
        )
        .await;
        assert_problem(s, &body, StatusCode::FORBIDDEN, "forbidden");

        // Tenancy: org B sees and changes nothing of A's, nor uses A's personas.
        for path in [
            format!("/v1/experiments/{draft}"),
            format!("/v1/experiments/{draft}/results"),
        ] {
            let (s, body) = app.get(&path, &b.api_key).await;
            assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");
        }
        for action in ["start", "stop", "pause"] {
            let (s, body) = app
                .post(
                    &format!("/v1/experiments/{draft}/{action}"),
                    &b.api_key,
                    json!({}),
                )
                .await;
            assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");
        }
        let (s, body) = put(
            &app,
            &format!("/v1/experiments/{draft}"),
            &b.api_key,
            replacement.clone(),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
        let (s, list) = app.get("/v1/experiments", &b.api_key).await;
        assert_eq!((s, list["items"].clone()), (StatusCode::OK, json!([])));
        let (s, body) = app
            .post(
                "/v1/experiments",
                &b.api_key,
                experiment_body("b", &p1, &p2),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(
            field_codes(&body),
            pairs(&[
                ("variants[0].persona_id", "unknown_persona"),
                ("variants[1].persona_id", "unknown_persona"),
            ])
        );
        let (_, still) = app
            .get(&format!("/v1/experiments/{draft}"), &a.api_key)
            .await;
        assert_eq!(still["status"], "draft", "B's attempts changed nothing");
    }
}

/// Records `trials` outcomes for `variant`, the first `conversions` converted.
async fn record(
    store: &SqlStore,
    org: OrgId,
    experiment: ExperimentId,
    variant: VariantId,
    trials: u32,
    conversions: u32,
) {
    for n in 0..trials {
        let counted = store
            .record_outcome(org, experiment, variant, CallId::new(), n < conversions)
            .await
            .expect("outcome");
        assert!(counted);
    }
}

fn ids(e: &Value) -> (ExperimentId, VariantId, VariantId) {
    let uuid = |v: &Value| uuid::Uuid::parse_str(v.as_str().expect("id")).expect("uuid");
    (
        ExperimentId::from_uuid(uuid(&e["id"])),
        VariantId::from_uuid(uuid(&e["variants"][0]["id"])),
        VariantId::from_uuid(uuid(&e["variants"][1]["id"])),
    )
}

#[tokio::test]
async fn results_decide_from_recorded_outcomes() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await;
        let store = app.store().await;
        let (a, b) = (app.org("A").await, app.org("B").await);
        let (p1, p2) = (
            persona(&store, &a, "Sam").await,
            persona(&store, &a, "Alex").await,
        );

        // 150 trials per arm: 10% for the control, 30% for the treatment.
        let big = create(&app, &a.api_key, experiment_body("big", &p1, &p2)).await;
        let (id, control, treatment) = ids(&big);
        let (s, _) = app
            .post(
                &format!("/v1/experiments/{id}/start"),
                &a.api_key,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        record(&store, org_id(&a), id, control, 150, 15).await;
        record(&store, org_id(&a), id, treatment, 150, 45).await;

        let (s, r) = app
            .get(&format!("/v1/experiments/{id}/results"), &a.api_key)
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert_eq!(r["decision"], "winner", "{r}");
        assert_eq!(r["winner_variant_id"], json!(treatment.to_string()));
        assert_eq!(
            (
                r["confidence"].clone(),
                r["alpha"].clone(),
                r["min_trials"].clone()
            ),
            (json!(0.95), json!(0.05), json!(100))
        );
        let (c, t) = (&r["variants"][0], &r["variants"][1]);
        assert_eq!(
            (c["trials"].clone(), c["conversions"].clone()),
            (json!(150), json!(15))
        );
        assert_eq!(
            (t["trials"].clone(), t["conversions"].clone()),
            (json!(150), json!(45))
        );
        assert!((t["rate"].as_f64().expect("rate") - 0.3).abs() < 1e-12);
        assert!((t["absolute_lift"].as_f64().expect("lift") - 0.2).abs() < 1e-9);
        assert!((t["relative_lift"].as_f64().expect("lift") - 2.0).abs() < 1e-9);
        assert!(t["p_value"].as_f64().expect("p") < 0.001, "{t}");
        assert_eq!(t["significant"], true);
        assert!(c["p_value"].is_null() && c["absolute_lift"].is_null());
        assert_eq!(c["significant"], false);
        let (lower, upper) = (
            t["interval"]["lower"].as_f64().expect("lower"),
            t["interval"]["upper"].as_f64().expect("upper"),
        );
        assert!(lower < 0.3 && 0.3 < upper, "{t}");

        // The same counts with a higher bar: not enough data yet.
        let (s, r) = app
            .get(
                &format!("/v1/experiments/{id}/results?min_trials=1000&confidence=0.99&alpha=0.01"),
                &a.api_key,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert_eq!(r["decision"], "insufficient_data");
        assert!(r["winner_variant_id"].is_null());
        assert_eq!(r["confidence"], json!(0.99));
        let wider = r["variants"][1]["interval"]["upper"]
            .as_f64()
            .expect("upper");
        assert!(wider > upper, "99% intervals are wider than 95% ones");

        // A small experiment: insufficient data at the default bar.
        let small = create(&app, &a.api_key, experiment_body("small", &p1, &p2)).await;
        let (small_id, small_control, small_treatment) = ids(&small);
        record(&store, org_id(&a), small_id, small_control, 20, 2).await;
        record(&store, org_id(&a), small_id, small_treatment, 20, 10).await;
        let (s, r) = app
            .get(&format!("/v1/experiments/{small_id}/results"), &a.api_key)
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert_eq!(r["decision"], "insufficient_data", "{r}");
        assert_eq!(r["variants"][1]["trials"], 20);

        // Enough data, no real difference.
        let even = create(&app, &a.api_key, experiment_body("even", &p1, &p2)).await;
        let (even_id, even_control, even_treatment) = ids(&even);
        record(&store, org_id(&a), even_id, even_control, 10, 5).await;
        record(&store, org_id(&a), even_id, even_treatment, 10, 5).await;
        let (_, r) = app
            .get(
                &format!("/v1/experiments/{even_id}/results?min_trials=10"),
                &a.api_key,
            )
            .await;
        assert_eq!(r["decision"], "no_significant_difference", "{r}");

        // Bad settings.
        let (s, body) = app
            .get(
                &format!("/v1/experiments/{id}/results?confidence=1.5&alpha=0"),
                &a.api_key,
            )
            .await;
        assert_problem(
            s,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert_eq!(
            field_codes(&body),
            pairs(&[("confidence", "out_of_range"), ("alpha", "out_of_range")])
        );
        let (s, body) = app
            .get(
                &format!("/v1/experiments/{id}/results?confidence=high"),
                &a.api_key,
            )
            .await;
        assert_problem(s, &body, StatusCode::BAD_REQUEST, "invalid_query");
        let (s, body) = app
            .get(
                &format!("/v1/experiments/{id}/results?min_trials=-1"),
                &a.api_key,
            )
            .await;
        assert_problem(s, &body, StatusCode::BAD_REQUEST, "invalid_query");
        let (s, body) = app
            .get(
                &format!("/v1/experiments/{}/results", ExperimentId::new()),
                &a.api_key,
            )
            .await;
        assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");
        let (s, body, _) = app
            .call(
                Method::GET,
                &format!("/v1/experiments/{id}/results"),
                None,
                None,
            )
            .await;
        assert_problem(s, &body, StatusCode::UNAUTHORIZED, "missing_credentials");

        // Tenancy: B cannot read A's results.
        let (s, body) = app
            .get(&format!("/v1/experiments/{id}/results"), &b.api_key)
            .await;
        assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");
    }
}
