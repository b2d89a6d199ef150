//! The deployment files name settings the service accepts: the Kubernetes
//! ConfigMaps, the Secret's example keys and the compose `.env.example` all
//! load through the real configuration loader.

use std::path::Path;

fn read(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `KEY: value` pairs under a ConfigMap's `data:`.
fn config_map(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut in_data = false;
    for line in text.lines() {
        if line.starts_with("data:") {
            in_data = true;
        } else if in_data && let Some(entry) = line.strip_prefix("  ") {
            if let Some((key, value)) = entry.split_once(": ") {
                pairs.push((key.to_owned(), value.trim_matches('"').to_owned()));
            }
        } else if !line.trim().is_empty() {
            in_data = false;
        }
    }
    pairs
}

/// `IACE_…=value` lines, commented-out ones included (they are the
/// documented optional keys).
fn env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(|l| l.trim_start_matches('#').trim())
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.starts_with("IACE_") && !k.contains(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn the_deployments_settings_are_ones_the_service_accepts() {
    let mut env = config_map(&read("deploy/k8s/base/configmap.yaml"));
    env.extend(config_map(&read(
        "deploy/k8s/overlays/production/configmap.yaml",
    )));
    env.extend(env_file(&read("deploy/k8s/secret.example.env")));
    assert!(env.len() >= 20, "{env:?}");
    let config = iace_api::config::load(None, &env).expect("the Kubernetes settings load");
    assert_eq!(config.server.drain_timeout_ms, 300_000);
    assert!(
        !config.database.migrate_on_connect,
        "replicas do not migrate"
    );
    assert!(config.traces.otlp_endpoint.is_some());
    assert!(config.telnyx.is_some() && config.groq.is_some() && config.deepgram.is_some());
    assert!(config.redis.is_some() && config.sentry.dsn.is_some());

    let compose = env_file(&read("deploy/.env.example"));
    assert!(compose.len() >= 5, "{compose:?}");
    iace_api::config::load(None, &compose).expect("the compose settings load");
}

#[test]
fn the_ingresses_route_the_api_and_never_the_instances_own_endpoints() {
    for file in [
        "deploy/k8s/base/ingress.yaml",
        "deploy/k8s/overlays/production/ingress.yaml",
    ] {
        let text = read(file);
        let paths: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- path: "))
            .collect();
        assert_eq!(
            paths,
            ["/v1", "/webhooks", "/docs", "/openapi.json"],
            "{file}"
        );
    }
}
