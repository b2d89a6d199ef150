//! Stopping gracefully: on the stop signal (SIGTERM) an instance drains —
//! readiness fails and new media streams are refused, while a live call goes
//! on, its webhooks still served — and stops once the call has ended.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::Backend;
use crate::media::{answered_call, connect, hear, say, send, setup_with, ws_url};

#[tokio::test]
async fn a_live_call_survives_the_stop_signal_until_it_ends_and_new_streams_are_refused() {
    let (app, telnyx, org) = setup_with(Backend::Sqlite, |c| {
        c.server.drain_timeout_ms = 20_000;
    })
    .await;
    let (call, token) = answered_call(&app, &telnyx, &org).await;
    let mut socket = connect(&app, &token, &call).await;
    hear(&mut socket).await;

    app.stop();
    // Not ready any more: the load balancer stops sending new work here.
    let mut ready = StatusCode::OK;
    for _ in 0..100 {
        ready = app
            .client
            .get(format!("{}/readyz", app.base))
            .send()
            .await
            .expect("readyz")
            .status();
        if ready == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        ready,
        StatusCode::SERVICE_UNAVAILABLE,
        "readiness fails while draining"
    );

    // A new call is still answered (its webhook is served), but its stream
    // must go to another instance.
    let (second, second_token) = answered_call(&app, &telnyx, &org).await;
    let refused =
        tokio_tungstenite::connect_async(format!("{}?token={second_token}", ws_url(&app))).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 503);
            assert_eq!(
                response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok()),
                Some("1")
            );
        }
        other => panic!("a new stream was not refused: {:?}", other.map(|_| ())),
    }
    let _ = second;

    // The live call goes on: the caller is answered.
    say(&mut socket, "What time do you open tomorrow?").await;
    let (answer, _) = hear(&mut socket).await;
    assert!(answer.contains("nine to five"), "{answer}");
    assert!(
        !app.served.is_finished(),
        "still serving while a call is live"
    );

    // The call ends: the instance stops.
    send(&mut socket, json!({"event": "stop"})).await;
    let served = tokio::time::timeout(Duration::from_secs(15), app.served)
        .await
        .expect("stopped once the call ended")
        .expect("the server task");
    assert!(served.is_ok(), "{served:?}");
}

#[tokio::test]
async fn the_drain_limit_stops_an_instance_with_calls_still_live() {
    let (app, telnyx, org) = setup_with(Backend::Sqlite, |c| {
        c.server.drain_timeout_ms = 300;
        c.server.shutdown_timeout_ms = 500;
    })
    .await;
    let (call, token) = answered_call(&app, &telnyx, &org).await;
    let mut socket = connect(&app, &token, &call).await;
    hear(&mut socket).await;
    app.stop();
    // The call never ends by itself; the limits bound the stop.
    let served = tokio::time::timeout(Duration::from_secs(10), app.served)
        .await
        .expect("stopped within the drain and shutdown limits")
        .expect("the server task");
    assert!(served.is_ok(), "{served:?}");
}

#[test]
fn sigterm_drains_the_binary_then_stops_it() {
    let crate::observability::Served {
        mut server,
        port,
        lines,
        mut seen,
    } = crate::observability::serve_binary();
    // The container HEALTHCHECK: the binary probes itself.
    let probe = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_iace-api"))
            .args(["probe", "--addr", &format!("127.0.0.1:{port}")])
            .env("IACE_LOG__FILTER", "off")
            .output()
            .expect("iace-api probe")
            .status
    };
    assert!(probe().success(), "healthy while serving");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(killed.success());
    let mut exited = None;
    for _ in 0..200 {
        if let Some(status) = server.try_wait().expect("wait") {
            exited = Some(status);
            break;
        }
        #[allow(
            clippy::disallowed_methods,
            reason = "a synchronous test polling a child process"
        )]
        std::thread::sleep(Duration::from_millis(50));
    }
    let Some(status) = exited else {
        let _ = server.kill();
        panic!("still running 10 s after SIGTERM");
    };
    assert!(status.success(), "{status}");
    assert!(!probe().success(), "nothing answers once stopped");
    seen.extend(lines.map_while(Result::ok));
    let messages: Vec<String> = seen
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|l| l["message"].as_str().map(str::to_owned))
        .collect();
    let at = |m: &str| messages.iter().position(|x| x == m);
    assert!(
        at("draining") < at("drained") && at("drained").is_some(),
        "{messages:?}"
    );
}
