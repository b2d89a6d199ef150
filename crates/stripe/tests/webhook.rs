//! `Stripe-Signature` as Stripe's libraries compute it, and the handled
//! event shapes.

use hmac::{Hmac, KeyInit, Mac};
use iace_domain::billing::{BillingEventKind, SubscriptionStatus};
use iace_stripe::{StripeError, WebhookVerifier, parse_event};
use proptest::prelude::*;
use secrecy::SecretString;
use sha2::Sha256;

const SECRET: &str = "whsec_test_5WbX5kEWLlfzsGNjH64I8lOOqUB6e8FH";
const NOW: i64 = 1_764_000_000;
const BODY: &[u8] = br#"{"id":"evt_1","object":"event","type":"customer.subscription.updated","created":1764000000,"data":{"object":{"id":"sub_1","object":"subscription","customer":"cus_1","status":"active","items":{"object":"list","data":[{"id":"si_1","price":{"id":"price_pro_monthly"}}]}}}}"#;

/// Stripe's scheme: hex(HMAC-SHA256(key = the whole secret, "{t}.{body}")).
fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn verifier() -> WebhookVerifier {
    WebhookVerifier::new(SecretString::from(SECRET), 300)
}

#[test]
fn a_header_signed_as_stripe_signs_verifies() {
    let header = format!("t={NOW},v1={}", sign(SECRET, NOW, BODY));
    verifier().verify(Some(&header), BODY, NOW).expect("valid");
    // With a v0 value and extra spaces, as Stripe may send.
    let header = format!("t={NOW}, v1={}, v0=deadbeef", sign(SECRET, NOW, BODY));
    verifier().verify(Some(&header), BODY, NOW).expect("valid");
}

#[test]
fn any_v1_may_match_while_secrets_roll() {
    let header = format!(
        "t={NOW},v1={},v1={}",
        sign("whsec_old", NOW, BODY),
        sign(SECRET, NOW, BODY)
    );
    verifier()
        .verify(Some(&header), BODY, NOW)
        .expect("the second matches");
}

#[test]
fn tampering_a_wrong_secret_and_stale_timestamps_fail() {
    let mut tampered = BODY.to_vec();
    tampered[10] ^= 1;
    let header = format!("t={NOW},v1={}", sign(SECRET, NOW, BODY));
    assert!(matches!(
        verifier().verify(Some(&header), &tampered, NOW),
        Err(StripeError::InvalidSignature)
    ));
    let header = format!("t={NOW},v1={}", sign("whsec_other", NOW, BODY));
    assert!(matches!(
        verifier().verify(Some(&header), BODY, NOW),
        Err(StripeError::InvalidSignature)
    ));
    for t in [NOW - 301, NOW + 301] {
        let header = format!("t={t},v1={}", sign(SECRET, t, BODY));
        let err = verifier()
            .verify(Some(&header), BODY, NOW)
            .expect_err("stale");
        assert_eq!(err.code(), "stale_timestamp");
    }
    // The signed timestamp is the header's: moving it breaks the signature.
    let header = format!("t={NOW},v1={}", sign(SECRET, NOW - 1_000, BODY));
    assert!(verifier().verify(Some(&header), BODY, NOW).is_err());
}

#[test]
fn missing_and_malformed_headers_fail() {
    assert!(matches!(
        verifier().verify(None, BODY, NOW),
        Err(StripeError::MissingHeader)
    ));
    for header in [
        "",
        "t=abc,v1=00",
        &format!("t={NOW}"),
        "v1=00",
        &format!("t={NOW},v0=00"),
    ] {
        assert!(
            matches!(
                verifier().verify(Some(header), BODY, NOW),
                Err(StripeError::MalformedHeader)
            ),
            "{header:?}"
        );
    }
    let header = format!("t={NOW},v1=not-hex");
    assert!(matches!(
        verifier().verify(Some(&header), BODY, NOW),
        Err(StripeError::InvalidSignature)
    ));
}

#[test]
fn handled_events_parse() {
    let event = parse_event(BODY).expect("parse");
    assert_eq!(event.id, "evt_1");
    assert_eq!(
        event.kind,
        BillingEventKind::SubscriptionChanged {
            customer_ref: "cus_1".into(),
            price_ref: Some("price_pro_monthly".into()),
            status: SubscriptionStatus::Active
        }
    );
    let checkout = parse_event(br#"{"id":"evt_2","type":"checkout.session.completed","created":1764000000,"data":{"object":{"object":"checkout.session","customer":"cus_2","client_reference_id":"0192f0c8-0000-7000-8000-000000000000","subscription":"sub_2"}}}"#).expect("parse");
    assert_eq!(
        checkout.kind,
        BillingEventKind::CheckoutCompleted {
            customer_ref: "cus_2".into(),
            org_ref: Some("0192f0c8-0000-7000-8000-000000000000".into())
        }
    );
    let deleted = parse_event(br#"{"id":"evt_3","type":"customer.subscription.deleted","created":1,"data":{"object":{"customer":"cus_1","status":"canceled"}}}"#).expect("parse");
    assert_eq!(
        deleted.kind,
        BillingEventKind::SubscriptionEnded {
            customer_ref: "cus_1".into()
        }
    );
    let failed = parse_event(br#"{"id":"evt_4","type":"invoice.payment_failed","created":1,"data":{"object":{"customer":"cus_1"}}}"#).expect("parse");
    assert_eq!(
        failed.kind,
        BillingEventKind::PaymentFailed {
            customer_ref: "cus_1".into()
        }
    );
    let other = parse_event(br#"{"id":"evt_5","type":"charge.refunded","created":1,"data":{"object":{"customer":{"id":"cus_1"}}}}"#).expect("parse");
    assert_eq!(other.kind, BillingEventKind::Other);
    assert!(parse_event(b"{}").is_err());
    assert!(parse_event(b"not json").is_err());
}

proptest! {
    #[test]
    fn arbitrary_headers_and_bodies_never_panic(header in ".{0,200}", body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = verifier().verify(Some(&header), &body, NOW);
        let _ = parse_event(&body);
    }
}
