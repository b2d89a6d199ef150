//! Personas: CRUD, validation, roles, tenancy, and a persona in use.

use iace_domain::ports::ExperimentRepository;
use iace_domain::{OrgId, PersonaId};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

fn persona() -> Value {
    json!({
        "name": "Sam from Support",
        "voice": {"name": "aura-2-thalia-en", "speed": 1.1},
        "system_prompt": "You help customers of Acme Telecom with billing questions.",
        "greeting": "Hi, this is Sam from Acme. How can I help?",
        "style": "empathetic",
        "language": "pt_br"
    })
}

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
async fn personas_crud_and_tenancy() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await;
        let (a, b) = (app.org("A").await, app.org("B").await);

        let (s, created) = app.post("/v1/personas", &a.api_key, persona()).await;
        assert_eq!(s, StatusCode::CREATED, "{created}");
        assert_eq!(created["name"], "Sam from Support");
        assert_eq!(
            created["voice"],
            json!({"name": "aura-2-thalia-en", "speed": 1.1})
        );
        assert_eq!(created["style"], "empathetic");
        assert_eq!(created["language"], "pt-BR", "languages are normalised");
        assert_eq!(created["created_at"], created["updated_at"]);
        let id = created["id"].as_str().expect("id").to_owned();

        // Defaults: speed 1.0, professional, en-US.
        let (s, minimal) = app
            .post(
                "/v1/personas",
                &a.api_key,
                json!({
                    "name": "Max",
                    "voice": {"name": "aura-2-orion-en"},
                    "system_prompt": "Book appointments.",
                    "greeting": "Hello!"
                }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{minimal}");
        assert_eq!(minimal["voice"]["speed"], 1.0);
        assert_eq!(minimal["style"], "professional");
        assert_eq!(minimal["language"], "en-US");

        // Stored timestamps may be less precise than the clock's; the rest
        // reads back exactly as created.
        let without_times = |v: &Value| {
            let mut v = v.clone();
            for key in ["created_at", "updated_at"] {
                v.as_object_mut().expect("object").remove(key);
            }
            v
        };
        let (s, got) = app.get(&format!("/v1/personas/{id}"), &a.api_key).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(without_times(&got), without_times(&created));
        let (s, list) = app.get("/v1/personas", &a.api_key).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(list["items"].as_array().map(Vec::len), Some(2));
        let (s, page) = app.get("/v1/personas?limit=1", &a.api_key).await;
        assert_eq!(s, StatusCode::OK);
        let cursor = page["next_cursor"].as_str().expect("cursor");
        let (_, rest) = app
            .get(&format!("/v1/personas?limit=1&cursor={cursor}"), &a.api_key)
            .await;
        assert_eq!(rest["items"][0]["id"], minimal["id"]);

        let mut replacement = persona();
        replacement["greeting"] = json!("Good morning, Sam speaking.");
        replacement["style"] = json!("concise");
        let (s, updated, _) = app
            .call(
                Method::PUT,
                &format!("/v1/personas/{id}"),
                Some(&a.api_key),
                Some(replacement),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{updated}");
        assert_eq!(updated["greeting"], "Good morning, Sam speaking.");
        assert_eq!(updated["style"], "concise");
        assert_eq!(
            updated["created_at"], got["created_at"],
            "creation time is kept"
        );
        let (_, got) = app.get(&format!("/v1/personas/{id}"), &a.api_key).await;
        assert_eq!(
            without_times(&got),
            without_times(&updated),
            "the replace was stored"
        );

        // Org B sees nothing of org A.
        let (s, body) = app.get(&format!("/v1/personas/{id}"), &b.api_key).await;
        assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");
        let (s, list) = app.get("/v1/personas", &b.api_key).await;
        assert_eq!((s, list["items"].clone()), (StatusCode::OK, json!([])));
        let (s, body, _) = app
            .call(
                Method::PUT,
                &format!("/v1/personas/{id}"),
                Some(&b.api_key),
                Some(persona()),
            )
            .await;
        assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");
        let (s, body, _) = app
            .call(
                Method::DELETE,
                &format!("/v1/personas/{id}"),
                Some(&b.api_key),
                None,
            )
            .await;
        assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");

        let missing = uuid::Uuid::now_v7();
        let (s, body) = app
            .get(&format!("/v1/personas/{missing}"), &a.api_key)
            .await;
        assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");
        let (s, body) = app.get("/v1/personas/42", &a.api_key).await;
        assert_problem(s, &body, StatusCode::BAD_REQUEST, "invalid_path");

        let (s, _, _) = app
            .call(
                Method::DELETE,
                &format!("/v1/personas/{id}"),
                Some(&a.api_key),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, body) = app.get(&format!("/v1/personas/{id}"), &a.api_key).await;
        assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");
    }
}

#[tokio::test]
async fn deleting_a_persona_used_by_an_experiment_is_a_conflict() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await;
        let a = app.org("A").await;
        // An experiment needs a control and a treatment: two personas.
        let mut ids = Vec::new();
        for _ in 0..2 {
            let (s, used) = app.post("/v1/personas", &a.api_key, persona()).await;
            assert_eq!(s, StatusCode::CREATED, "{used}");
            ids.push(used["id"].as_str().expect("id").to_owned());
        }
        let personas: Vec<PersonaId> = ids
            .iter()
            .map(|id| id.parse().expect("persona id"))
            .collect();
        let org_id: OrgId = a.id.parse().expect("org id");
        let experiment = iace_testkit::fixtures::experiment(org_id, &personas);
        app.store()
            .await
            .create(&experiment)
            .await
            .expect("experiment");
        let (s, unused) = app.post("/v1/personas", &a.api_key, persona()).await;
        assert_eq!(s, StatusCode::CREATED, "{unused}");

        for id in &ids {
            let (s, body, _) = app
                .call(
                    Method::DELETE,
                    &format!("/v1/personas/{id}"),
                    Some(&a.api_key),
                    None,
                )
                .await;
            assert_problem(s, &body, StatusCode::CONFLICT, "persona_in_use");
            assert_eq!(body["detail"], "persona is used by an experiment");
            let (s, _) = app.get(&format!("/v1/personas/{id}"), &a.api_key).await;
            assert_eq!(s, StatusCode::OK, "the persona is still there");
        }
        let (s, _, _) = app
            .call(
                Method::DELETE,
                &format!("/v1/personas/{}", unused["id"].as_str().expect("id")),
                Some(&a.api_key),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "an unused persona can go");
    }
}

#[tokio::test]
async fn persona_fields_are_validated_all_at_once() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await;
        let a = app.org("A").await;

        let (s, body) = app
            .post(
                "/v1/personas",
                &a.api_key,
                json!({
                    "name": " ",
                    "voice": {"name": "", "speed": 2.5},
                    "system_prompt": "",
                    "greeting": "x".repeat(1001),
                    "language": "klingon-9"
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
                json!("language"),
                json!("name"),
                json!("system_prompt"),
                json!("greeting"),
                json!("voice.name"),
                json!("voice.speed"),
            ],
            "{body}"
        );

        for (field, value, expected) in [
            ("name", json!("x".repeat(101)), "name"),
            ("system_prompt", json!("p".repeat(20_001)), "system_prompt"),
            ("greeting", json!("   "), "greeting"),
            ("voice", json!({"name": "v", "speed": 0.4}), "voice.speed"),
            ("language", json!("english please"), "language"),
        ] {
            let mut request = persona();
            request[field] = value;
            let (s, body) = app.post("/v1/personas", &a.api_key, request).await;
            assert_problem(
                s,
                &body,
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
            );
            assert_eq!(fields(&body), vec![json!(expected)], "{body}");
        }

        // Unknown styles and fields, and missing required fields, are refused.
        for (field, value) in [
            ("style", json!("sarcastic")),
            ("temperature", json!(0.7)),
            ("voice", json!({"name": "v", "pitch": 2})),
        ] {
            let mut request = persona();
            request[field] = value;
            let (s, body) = app.post("/v1/personas", &a.api_key, request).await;
            assert_problem(s, &body, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
        }
        let (s, body) = app
            .post("/v1/personas", &a.api_key, json!({"name": "Sam"}))
            .await;
        assert_problem(s, &body, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");

        // The same rules on a replace.
        let (s, created) = app.post("/v1/personas", &a.api_key, persona()).await;
        assert_eq!(s, StatusCode::CREATED, "{created}");
        let id = created["id"].as_str().expect("id");
        let mut request = persona();
        request["greeting"] = json!("");
        let (s, body, _) = app
            .call(
                Method::PUT,
                &format!("/v1/personas/{id}"),
                Some(&a.api_key),
                Some(request),
            )
            .await;
        assert_problem(
            s,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert_eq!(fields(&body), vec![json!("greeting")]);
    }
}

#[tokio::test]
async fn persona_routes_need_credentials_and_roles() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await;
        let a = app.org("A").await;
        let (s, created) = app.post("/v1/personas", &a.api_key, persona()).await;
        assert_eq!(s, StatusCode::CREATED, "{created}");
        let item = format!("/v1/personas/{}", created["id"].as_str().expect("id"));

        for (method, path, body) in [
            (Method::POST, "/v1/personas", Some(persona())),
            (Method::GET, "/v1/personas", None),
            (Method::GET, item.as_str(), None),
            (Method::PUT, item.as_str(), Some(persona())),
            (Method::DELETE, item.as_str(), None),
        ] {
            let (s, body, _) = app.call(method, path, None, body).await;
            assert_problem(s, &body, StatusCode::UNAUTHORIZED, "missing_credentials");
        }
        let (s, body, _) = app
            .call(Method::GET, "/v1/personas", Some("iace_bogus_key"), None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");

        let viewer = key_with_role(&app, &a, "viewer").await;
        let (s, _) = app.get(&item, &viewer).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = app.get("/v1/personas", &viewer).await;
        assert_eq!(s, StatusCode::OK);
        for (method, path, body) in [
            (Method::POST, "/v1/personas", Some(persona())),
            (Method::PUT, item.as_str(), Some(persona())),
            (Method::DELETE, item.as_str(), None),
        ] {
            let (s, body, _) = app.call(method, path, Some(&viewer), body).await;
            assert_problem(s, &body, StatusCode::FORBIDDEN, "forbidden");
        }

        let member = key_with_role(&app, &a, "member").await;
        let (s, _) = app.post("/v1/personas", &member, persona()).await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, _, _) = app
            .call(Method::PUT, &item, Some(&member), Some(persona()))
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, body, _) = app.call(Method::DELETE, &item, Some(&member), None).await;
        assert_problem(s, &body, StatusCode::FORBIDDEN, "forbidden");

        let admin = key_with_role(&app, &a, "admin").await;
        let (s, _, _) = app.call(Method::DELETE, &item, Some(&admin), None).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
    }
}

#[tokio::test]
async fn persona_reads_are_cached_and_writes_invalidate_them() {
    use iace_domain::ports::PersonaRepository;

    let app = TestApp::spawn(Backend::Sqlite).await;
    let org = app.org("Acme").await;
    let (s, created) = app.post("/v1/personas", &org.api_key, persona()).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let path = format!("/v1/personas/{id}");
    let (s, _) = app.get(&path, &org.api_key).await;
    assert_eq!(s, StatusCode::OK);

    // Changed behind the service's back: the cached copy is still served.
    let store = app.store().await;
    let org_id: OrgId = org.id.parse().expect("org id");
    let persona_id: PersonaId = id.parse().expect("persona id");
    let mut changed = PersonaRepository::get(&store, org_id, persona_id)
        .await
        .expect("persona");
    changed.name = "Changed in the database".to_owned();
    PersonaRepository::update(&store, &changed)
        .await
        .expect("update");
    let (_, read) = app.get(&path, &org.api_key).await;
    assert_eq!(read["name"], "Sam from Support");

    // A write through the API invalidates.
    let mut body = persona();
    body["name"] = json!("Sam, renamed");
    let (s, _, _) = app
        .call(Method::PUT, &path, Some(&org.api_key), Some(body))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, read) = app.get(&path, &org.api_key).await;
    assert_eq!(read["name"], "Sam, renamed");
    let (s, _, _) = app
        .call(Method::DELETE, &path, Some(&org.api_key), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.get(&path, &org.api_key).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
