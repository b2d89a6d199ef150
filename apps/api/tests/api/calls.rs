//! Calls: placing (idempotently) through the simulated provider, dial
//! failures, listing and filters, details with history, hang-up, transfer,
//! roles and tenancy.

use iace_db::SqlStore;
use iace_domain::call::{CallEvent, CallEventRecord, EventSource};
use iace_domain::ports::{AgentRepository, CallRepository, PersonaRepository};
use iace_domain::{AgentId, CallId, OrgId};
use iace_testkit::fixtures;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

const TO: &str = "+442079460958";
const FROM: &str = "+14155550100";

fn org_id(org: &Org) -> OrgId {
    OrgId::from_uuid(uuid::Uuid::parse_str(&org.id).expect("org id"))
}

fn call_id(call: &Value) -> CallId {
    CallId::from_uuid(uuid::Uuid::parse_str(call["id"].as_str().expect("id")).expect("uuid"))
}

/// `POST /v1/calls` with an optional `Idempotency-Key`.
async fn place(app: &TestApp, token: &str, key: Option<&str>, body: Value) -> (StatusCode, Value) {
    let mut request = app
        .client
        .post(format!("{}/v1/calls", app.base))
        .bearer_auth(token)
        .json(&body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.expect("send");
    let status = response.status();
    (status, response.json().await.expect("json"))
}

fn fields(body: &Value) -> Vec<Value> {
    body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].clone())
        .collect()
}

fn ids(page: &Value) -> Vec<Value> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["id"].clone())
        .collect()
}

/// Moves a call to in progress as the provider's answer webhook would.
async fn answer(store: &SqlStore, org: OrgId, id: CallId) {
    let mut call = CallRepository::get(store, org, id).await.expect("call");
    let (from, expected, at) = (call.status, call.version, fixtures::now());
    let result = call.apply(CallEvent::Answered, at);
    let record = CallEventRecord::new(
        org,
        id,
        from,
        CallEvent::Answered,
        &result,
        EventSource::Webhook {
            provider_event_id: format!("evt-{id}"),
        },
        at,
    );
    store
        .save_transition(&call, expected, &record)
        .await
        .expect("answered");
}

#[tokio::test]
async fn calls_place_idempotently_fail_list_hang_up_and_transfer() {
    for backend in BACKENDS {
        let app = TestApp::spawn(backend).await;
        let store = app.store().await;
        let (a, b) = (app.org("A").await, app.org("B").await);
        let persona = fixtures::persona(org_id(&a));
        PersonaRepository::create(&store, &persona)
            .await
            .expect("persona");
        let persona_id = persona.id.to_string();
        let (s, customer) = app
            .post("/v1/customers", &a.api_key, json!({"phone": TO}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{customer}");

        // Placing: 201, dialled through the simulated provider, still pending.
        let request = json!({"to": "+44 20 7946 0958", "from": FROM, "persona_id": persona_id});
        let (s, first) = place(&app, &a.api_key, Some("order-1"), request.clone()).await;
        assert_eq!(s, StatusCode::CREATED, "{first}");
        assert_eq!(first["status"], "pending");
        assert_eq!(first["direction"], "outbound");
        assert_eq!(
            (first["to"].clone(), first["from"].clone()),
            (json!(TO), json!(FROM))
        );
        assert_eq!(first["persona_id"], json!(persona_id));
        assert_eq!(first["customer_id"], customer["id"], "the callee is linked");
        let provider_id = first["provider_call_id"].as_str().expect("provider id");
        assert!(provider_id.starts_with("sim:"), "{provider_id}");

        // The same key: the same call, 200, and no second dial (a second dial
        // would have stored a new provider id or a second call).
        let (s, again) = place(&app, &a.api_key, Some("order-1"), request.clone()).await;
        assert_eq!(s, StatusCode::OK, "{again}");
        assert_eq!(again["id"], first["id"]);
        assert_eq!(again["provider_call_id"], first["provider_call_id"]);
        let (_, all) = app.get("/v1/calls", &a.api_key).await;
        assert_eq!(ids(&all), vec![first["id"].clone()]);
        let (s, body) = place(
            &app,
            &a.api_key,
            Some("order-1"),
            json!({"to": "+442079460900", "from": FROM}),
        )
        .await;
        assert_problem(s, &body, StatusCode::CONFLICT, "idempotency_key_reused");

        // Validation: every invalid field at once; unknown persona; bad key.
        let (s, body) = place(
            &app,
            &a.api_key,
            Some("two words"),
            json!({"to": "nope", "from": "123"}),
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
            vec![json!("to"), json!("from"), json!("Idempotency-Key")]
        );
        let (s, body) = place(
            &app,
            &a.api_key,
            Some(&"k".repeat(256)),
            json!({"to": TO, "from": FROM}),
        )
        .await;
        assert_problem(
            s,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert_eq!(fields(&body), vec![json!("Idempotency-Key")]);
        let (s, body) = place(
            &app,
            &a.api_key,
            None,
            json!({"to": TO, "from": FROM, "persona_id": uuid::Uuid::now_v7()}),
        )
        .await;
        assert_problem(
            s,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert_eq!(fields(&body), vec![json!("persona_id")]);
        let (s, body) = place(
            &app,
            &a.api_key,
            None,
            json!({"to": TO, "from": FROM, "x": 1}),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

        // A number the simulated provider cannot route: 502, the call failed.
        let (s, body) = place(
            &app,
            &a.api_key,
            None,
            json!({"to": "+15550001234", "from": FROM}),
        )
        .await;
        assert_problem(s, &body, StatusCode::BAD_GATEWAY, "dial_failed");
        let (s, failed) = app.get("/v1/calls?status=failed", &a.api_key).await;
        assert_eq!(s, StatusCode::OK, "{failed}");
        let failed = failed["items"][0].clone();
        let failed_id = failed["id"].as_str().expect("failed call").to_owned();
        assert!(
            body["detail"]
                .as_str()
                .expect("detail")
                .contains(&failed_id),
            "{body}"
        );
        let (s, detail) = app.get(&format!("/v1/calls/{failed_id}"), &a.api_key).await;
        assert_eq!(s, StatusCode::OK, "{detail}");
        assert_eq!(detail["status"], "failed");
        assert!(detail["provider_call_id"].is_null());
        assert_eq!(detail["transcript"], json!([]));
        assert_eq!(
            detail["history"].as_array().map(Vec::len),
            Some(1),
            "{detail}"
        );
        assert_eq!(detail["history"][0]["event"]["type"], "failed");
        assert_eq!(detail["history"][0]["from"], "pending");
        assert_eq!(detail["history"][0]["to"], "failed");
        assert_eq!(detail["history"][0]["result"], "applied");
        assert_eq!(detail["history"][0]["source"], "runtime");

        // Two more calls without a key: 201 each.
        let mut placed = vec![first["id"].clone(), json!(failed_id)];
        for n in 0..2 {
            let (s, call) = place(
                &app,
                &a.api_key,
                None,
                json!({"to": format!("+44207946010{n}"), "from": FROM}),
            )
            .await;
            assert_eq!(s, StatusCode::CREATED, "{call}");
            assert!(call["customer_id"].is_null());
            placed.push(call["id"].clone());
        }

        // Listing: newest first by default, order=asc, cursors, filters.
        let newest: Vec<_> = placed.iter().rev().cloned().collect();
        let (_, page) = app.get("/v1/calls", &a.api_key).await;
        assert_eq!(ids(&page), newest);
        let (_, page) = app.get("/v1/calls?order=asc", &a.api_key).await;
        assert_eq!(ids(&page), placed);
        let (_, page) = app.get("/v1/calls?limit=3", &a.api_key).await;
        assert_eq!(ids(&page), newest[..3].to_vec());
        let cursor = page["next_cursor"].as_str().expect("cursor");
        let (_, rest) = app
            .get(&format!("/v1/calls?limit=3&cursor={cursor}"), &a.api_key)
            .await;
        assert_eq!(ids(&rest), newest[3..].to_vec());
        assert!(rest["next_cursor"].is_null());
        let customer_id = customer["id"].as_str().expect("customer");
        for (query, expected) in [
            (
                format!("customer_id={customer_id}"),
                vec![placed[0].clone()],
            ),
            (format!("persona_id={persona_id}"), vec![placed[0].clone()]),
            (
                "status=pending".to_owned(),
                newest
                    .iter()
                    .filter(|id| **id != placed[1])
                    .cloned()
                    .collect(),
            ),
            ("direction=inbound".to_owned(), vec![]),
            ("direction=outbound&order=asc".to_owned(), placed.clone()),
            ("created_after=2999-01-01T00:00:00Z".to_owned(), vec![]),
            (
                "created_before=2999-01-01T00:00:00%2B02:00&order=asc".to_owned(),
                placed.clone(),
            ),
        ] {
            let (s, page) = app.get(&format!("/v1/calls?{query}"), &a.api_key).await;
            assert_eq!(s, StatusCode::OK, "{query}: {page}");
            assert_eq!(ids(&page), expected, "{query}");
        }
        let (s, body) = app
            .get(
                "/v1/calls?status=dancing&direction=up&customer_id=1&agent_id=x&persona_id=y&created_after=yesterday&created_before=2026-13-01",
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
            fields(&body),
            [
                "status",
                "direction",
                "customer_id",
                "agent_id",
                "persona_id",
                "created_after",
                "created_before"
            ]
            .map(|f| json!(f))
            .to_vec()
        );
        let (s, body) = app.get("/v1/calls?cursor=garbage", &a.api_key).await;
        assert_problem(
            s,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        let (s, body) = app.get("/v1/calls?colour=red", &a.api_key).await;
        assert_problem(s, &body, StatusCode::BAD_REQUEST, "invalid_query");
        let (s, body) = app.get("/v1/calls/not-a-uuid", &a.api_key).await;
        assert_problem(s, &body, StatusCode::BAD_REQUEST, "invalid_path");
        let (s, body) = app
            .get(&format!("/v1/calls/{}", uuid::Uuid::now_v7()), &a.api_key)
            .await;
        assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");

        // Hang-up: accepted for a live call (the webhook ends it later), 409
        // for an ended one.
        let (s, body) = app
            .post(
                &format!("/v1/calls/{}/hangup", placed[2].as_str().expect("id")),
                &a.api_key,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["status"], "pending");
        let (s, body) = app
            .post(
                &format!("/v1/calls/{failed_id}/hangup"),
                &a.api_key,
                json!({}),
            )
            .await;
        assert_problem(s, &body, StatusCode::CONFLICT, "call_ended");

        // Transfer: only in progress; to an available agent with capacity.
        let org = org_id(&a);
        let ana = fixtures::agent(org, &["billing"], 1);
        AgentRepository::create(&store, &ana).await.expect("agent");
        let busy = fixtures::agent(org, &[], 1);
        AgentRepository::create(&store, &busy).await.expect("agent");
        store
            .adjust_active_calls(org, busy.id, 1)
            .await
            .expect("busy agent");
        let first_id = first["id"].as_str().expect("id").to_owned();
        let transfer = |id: &str| format!("/v1/calls/{id}/transfer");
        let (s, body) = app
            .post(
                &transfer(&first_id),
                &a.api_key,
                json!({"agent_id": ana.id}),
            )
            .await;
        assert_problem(s, &body, StatusCode::CONFLICT, "invalid_call_state");
        answer(&store, org, call_id(&first)).await;
        answer(&store, org, call_id(&json!({"id": placed[3]}))).await;
        let (s, body) = app
            .post(
                &transfer(&first_id),
                &a.api_key,
                json!({"agent_id": AgentId::new()}),
            )
            .await;
        assert_problem(
            s,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert_eq!(fields(&body), vec![json!("agent_id")]);
        let (s, body) = app
            .post(&transfer(&first_id), &a.api_key, json!({"agent": ana.id}))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let (s, body) = app
            .post(
                &transfer(&first_id),
                &a.api_key,
                json!({"agent_id": ana.id}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["status"], "escalating");
        assert_eq!(body["transferred_to"], json!(ana.id));
        let agent = AgentRepository::get(&store, org, ana.id)
            .await
            .expect("agent");
        assert_eq!(agent.active_calls, 1);
        let (_, detail) = app.get(&format!("/v1/calls/{first_id}"), &a.api_key).await;
        let events: Vec<_> = detail["history"]
            .as_array()
            .expect("history")
            .iter()
            .map(|e| {
                (
                    e["event"]["type"].clone(),
                    e["to"].clone(),
                    e["source"].clone(),
                )
            })
            .collect();
        assert_eq!(
            events,
            vec![
                (json!("answered"), json!("in_progress"), json!("webhook")),
                // The operator asked for it through the API.
                (
                    json!("escalation_started"),
                    json!("escalating"),
                    json!("api")
                ),
            ]
        );
        let (_, page) = app
            .get(&format!("/v1/calls?agent_id={}", ana.id), &a.api_key)
            .await;
        assert_eq!(ids(&page), vec![first["id"].clone()]);
        let other = placed[3].as_str().expect("id");
        let (s, body) = app
            .post(&transfer(other), &a.api_key, json!({"agent_id": busy.id}))
            .await;
        assert_problem(s, &body, StatusCode::CONFLICT, "agent_unavailable");
        let (s, body) = app
            .post(&transfer(other), &a.api_key, json!({"agent_id": ana.id}))
            .await;
        assert_problem(s, &body, StatusCode::CONFLICT, "agent_unavailable");
        let (_, still) = app.get(&format!("/v1/calls/{other}"), &a.api_key).await;
        assert_eq!(
            still["status"], "in_progress",
            "a refused transfer changes nothing"
        );
        assert!(still["transferred_to"].is_null());

        // Authentication and roles: a viewer reads but cannot place, hang up
        // or transfer.
        let (s, body, _) = app.call(Method::GET, "/v1/calls", None, None).await;
        assert_problem(s, &body, StatusCode::UNAUTHORIZED, "missing_credentials");
        let (_, viewer) = app
            .post(
                "/v1/api-keys",
                &a.api_key,
                json!({"name": "ro", "role": "viewer"}),
            )
            .await;
        let viewer = viewer["secret"].as_str().expect("secret").to_owned();
        let (s, page) = app.get("/v1/calls", &viewer).await;
        assert_eq!((s, ids(&page).len()), (StatusCode::OK, placed.len()));
        let (s, body) = place(&app, &viewer, None, json!({"to": TO, "from": FROM})).await;
        assert_problem(s, &body, StatusCode::FORBIDDEN, "forbidden");
        let (s, body) = app
            .post(&format!("/v1/calls/{other}/hangup"), &viewer, json!({}))
            .await;
        assert_problem(s, &body, StatusCode::FORBIDDEN, "forbidden");
        let (s, body) = app
            .post(&transfer(other), &viewer, json!({"agent_id": ana.id}))
            .await;
        assert_problem(s, &body, StatusCode::FORBIDDEN, "forbidden");

        // Tenancy: org B sees none of A's calls, personas or agents, and its
        // idempotency keys are its own.
        let (s, body) = app.get(&format!("/v1/calls/{first_id}"), &b.api_key).await;
        assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");
        let (s, page) = app.get("/v1/calls", &b.api_key).await;
        assert_eq!((s, page["items"].clone()), (StatusCode::OK, json!([])));
        let (s, body) = app
            .post(&format!("/v1/calls/{other}/hangup"), &b.api_key, json!({}))
            .await;
        assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");
        let (s, body) = app
            .post(&transfer(other), &b.api_key, json!({"agent_id": ana.id}))
            .await;
        assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");
        let (s, body) = place(&app, &b.api_key, Some("order-1"), request.clone()).await;
        assert_problem(
            s,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert_eq!(fields(&body), vec![json!("persona_id")]);
        let (s, own) = place(
            &app,
            &b.api_key,
            Some("order-1"),
            json!({"to": TO, "from": FROM}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{own}");
        assert_ne!(own["id"], first["id"]);
        assert!(own["customer_id"].is_null(), "A's customer is not B's");
    }
}

#[tokio::test]
async fn an_operator_sets_a_calls_outcome() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (a, b) = (app.org("Acme").await, app.org("Other").await);
    let (s, call) = place(
        &app,
        &a.api_key,
        None,
        json!({"to": "+442079460958", "from": "+14155550100"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{call}");
    let id = call["id"].as_str().expect("id").to_owned();
    let path = format!("/v1/calls/{id}/outcome");
    let (s, body, _) = app
        .call(
            Method::PUT,
            &path,
            Some(&a.api_key),
            Some(json!({"outcome": "converted"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["outcome"], "converted");
    let (_, read) = app.get(&format!("/v1/calls/{id}"), &a.api_key).await;
    assert_eq!(read["outcome"], "converted");
    let (s, body, _) = app
        .call(
            Method::PUT,
            &path,
            Some(&a.api_key),
            Some(json!({"outcome": "delighted"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (s, body, _) = app
        .call(
            Method::PUT,
            &path,
            Some(&b.api_key),
            Some(json!({"outcome": "resolved"})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "another organisation's call: {body}"
    );
    let (_, read) = app.get(&format!("/v1/calls/{id}"), &a.api_key).await;
    assert_eq!(read["outcome"], "converted", "unchanged");
}
