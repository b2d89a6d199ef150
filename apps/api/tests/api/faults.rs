//! Fault injection against the real server: its Postgres taken away mid-traffic
//! (through a TCP proxy that drops every connection and refuses new ones, as a
//! restart or a failover does) and given back. Redis going away is in
//! `redis_down`; providers failing mid-call are in `voice` and below.

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

use iace_testkit::proxy::FaultProxy;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};

use crate::common::*;
use crate::webhooks::{Telnyx, call, deliver, deliver_raw, event, place};

/// The request timeout the server runs with here.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// The address `url`'s authority names.
fn upstream_of(url: &str) -> SocketAddr {
    let authority = url_authority(url).1;
    authority
        .to_socket_addrs()
        .expect("resolvable")
        .next()
        .expect("an address")
}

/// `url`'s scheme and rest split around its `user@host:port` (user part
/// kept with the scheme).
fn url_authority(url: &str) -> (String, &str, &str) {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (authority, path) = rest.split_once('/').expect("a database name");
    match authority.rsplit_once('@') {
        Some((user, host)) => (format!("{scheme}://{user}@"), host, path),
        None => (format!("{scheme}://"), authority, path),
    }
}

/// `url` with its host and port replaced by `addr`.
fn reroute(url: &str, addr: SocketAddr) -> String {
    let (prefix, _, path) = url_authority(url);
    format!("{prefix}{addr}/{path}")
}

/// The server on Postgres, reached only through a proxy the test can cut.
async fn behind_a_proxy(telnyx: &Telnyx) -> (TestApp, Arc<FaultProxy>) {
    let mut proxy = None;
    let app = TestApp::spawn_with(Backend::Postgres, |c| {
        telnyx.configure(c);
        let started = FaultProxy::start(upstream_of(c.database.url.expose_secret()));
        let url = reroute(c.database.url.expose_secret(), started.addr());
        c.database.url = SecretString::from(url);
        c.database.connect_timeout_ms = 1_000;
        c.database.acquire_timeout_ms = 1_000;
        c.server.request_timeout_ms = u64::try_from(REQUEST_TIMEOUT.as_millis()).expect("ms");
        proxy = Some(Arc::new(started));
    })
    .await;
    (app, proxy.expect("the proxy is in place"))
}

async fn wait_for_readiness(app: &TestApp, expected: StatusCode, within: Duration) -> Value {
    let started = Instant::now();
    loop {
        let (status, body, _) = app.call(Method::GET, "/readyz", None, None).await;
        if status == expected {
            return body;
        }
        assert!(
            started.elapsed() < within,
            "readiness stayed {status} ({body}), expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Operator traffic in the background: every answer's status and time.
fn traffic(
    app: &TestApp,
    key: &str,
    path: String,
) -> tokio::task::JoinHandle<Vec<(StatusCode, Duration)>> {
    let (client, base, key) = (app.client.clone(), app.base.clone(), key.to_owned());
    tokio::spawn(async move {
        let mut seen = Vec::new();
        let until = Instant::now() + Duration::from_secs(6);
        while Instant::now() < until {
            let started = Instant::now();
            let status = client
                .get(format!("{base}{path}"))
                .bearer_auth(&key)
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .map_or(StatusCode::REQUEST_TIMEOUT, |r| r.status());
            seen.push((status, started.elapsed()));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        seen
    })
}

#[tokio::test]
async fn postgres_going_away_mid_traffic_is_survived_and_no_acknowledged_webhook_is_lost() {
    let telnyx = Telnyx::start().await;
    let (app, proxy) = behind_a_proxy(&telnyx).await;
    let org = app.org("Acme").await;
    let placed = place(&app, &org).await;
    assert_eq!(
        deliver(&app, &telnyx, &event("call.answered", &placed, json!({}))).await,
        "processed"
    );
    let operators = traffic(&app, &org.api_key, format!("/v1/calls/{}", placed.id));
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Postgres goes away.
    proxy.cut();
    let ready = wait_for_readiness(
        &app,
        StatusCode::SERVICE_UNAVAILABLE,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        ready["checks"],
        json!([{"name": "database", "ok": false}]),
        "{ready}"
    );

    // A webhook that cannot be recorded is not acknowledged: Telnyx retries it.
    let hangup = event(
        "call.hangup",
        &placed,
        json!({"hangup_cause": "normal_clearing", "hangup_source": "caller"}),
    );
    let body = serde_json::to_vec(&hangup).expect("json");
    let started = Instant::now();
    let (status, problem) = deliver_raw(&app.client, &app.base, &telnyx.key, &body, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    assert!(
        problem["code"].is_string(),
        "a problem with a code: {problem}"
    );
    assert!(
        started.elapsed() < REQUEST_TIMEOUT + Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // Postgres comes back; the API recovers without a restart.
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.restore();
    wait_for_readiness(&app, StatusCode::OK, Duration::from_secs(30)).await;

    // Telnyx's retry of the same event is applied once.
    let (status, receipt) = deliver_raw(&app.client, &app.base, &telnyx.key, &body, None).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(receipt["status"], "processed");
    let ended = call(&app, &org, &placed).await;
    assert_eq!(ended["status"], "completed", "{ended}");
    let events: Vec<&str> = ended["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|h| h["event"]["type"].as_str())
        .collect();
    assert_eq!(events, ["answered", "hung_up"], "{ended}");

    // No operator request hung past the request timeout or failed other than
    // with 503 while the database was away; they succeed again after.
    let seen = operators.await.expect("traffic");
    let slowest = seen.iter().map(|(_, took)| *took).max().unwrap_or_default();
    assert!(
        slowest < REQUEST_TIMEOUT + Duration::from_secs(2),
        "a request took {slowest:?}"
    );
    let statuses: std::collections::BTreeSet<u16> = seen.iter().map(|(s, _)| s.as_u16()).collect();
    assert!(
        statuses.iter().all(|s| [200, 503].contains(s)),
        "statuses seen: {statuses:?}"
    );
    assert!(
        statuses.contains(&503),
        "the outage was never seen: {statuses:?}"
    );
    assert_eq!(
        seen.last().map(|(s, _)| *s),
        Some(StatusCode::OK),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_database_that_stops_answering_costs_a_request_its_timeout_not_a_hang() {
    let telnyx = Telnyx::start().await;
    let (app, proxy) = behind_a_proxy(&telnyx).await;
    let org = app.org("Acme").await;
    let placed = place(&app, &org).await;
    let path = format!("/v1/calls/{}", placed.id);
    assert_eq!(app.get(&path, &org.api_key).await.0, StatusCode::OK);

    // Nothing passes and nothing is reset: queries on open connections hang.
    proxy.stall();
    let started = Instant::now();
    let (status, problem) = app.get(&path, &org.api_key).await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    // Whichever bound comes first answers, as a problem like any other: the
    // pool's acquire timeout (its health check hangs) or the request timeout
    // (a query hangs on its connection).
    assert!(
        ["unavailable", "request_timeout"].contains(&problem["code"].as_str().unwrap_or_default()),
        "{problem}"
    );
    assert!(
        took < REQUEST_TIMEOUT + Duration::from_secs(2),
        "took {took:?}"
    );
    // Readiness says so within its own bound, not the request timeout.
    let started = Instant::now();
    let (status, ready, _) = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert_eq!(
        ready["checks"],
        json!([{"name": "database", "ok": false}]),
        "{ready}"
    );
    assert!(
        started.elapsed() < REQUEST_TIMEOUT,
        "{:?}",
        started.elapsed()
    );

    // The partition heals: the stuck connections are replaced, no restart.
    proxy.restore();
    wait_for_readiness(&app, StatusCode::OK, Duration::from_secs(30)).await;
    let started = Instant::now();
    loop {
        let (status, body) = app.get(&path, &org.api_key).await;
        if status == StatusCode::OK {
            assert_eq!(body["id"], placed.id.as_str());
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
