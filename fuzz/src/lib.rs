//! # iace-fuzz — fuzz targets over the parsers that take untrusted input
//!
//! Each `pub fn` here takes the fuzzer's bytes, drives one parser the way the
//! server does, and panics only when a property every input must keep is
//! broken (a panic in the parser itself is a crash too). The binaries in
//! `fuzz_targets/` hand them to libFuzzer (`cargo fuzz run <target>`);
//! `just fuzz-smoke` runs every target for a bounded time, and the tests below
//! replay the seed corpora and every input a run ever found (`regressions/`)
//! on stable Rust.
//!
//! **Must not depend on** the API binary, a database or the network: the
//! targets call the adapters' and the domain's pure functions only.

use std::sync::{Arc, OnceLock};

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer as _, SigningKey};
use hmac::{Hmac, KeyInit as _, Mac as _};
use iace_app::AppError;
use iace_app::auth::{AuthConfig, AuthService};
use iace_app::voice::{MediaTokens, parse_mark};
use iace_domain::audio::{MULAW_SILENCE, linear_to_mulaw, mulaw_to_linear};
use iace_domain::ports::FixedClock;
use iace_domain::ports::store::{
    MockApiKeyRepository, MockOrgRepository, MockRefreshTokenRepository, MockUserRepository,
    StoreError,
};
use iace_domain::{CallId, PhoneNumber};
use iace_telnyx::media::{InboundFrame, OutboundFrame};
use secrecy::SecretString;
use sha2::Sha256;

/// The moment every target verifies at (Unix s).
const NOW: i64 = 1_764_000_000;
/// The webhook tolerance the server is configured with by default.
const TOLERANCE_SECS: u64 = 300;

/// Telnyx webhook: Ed25519 over `timestamp|body`, then the event parser.
#[derive(Debug, Arbitrary)]
struct TelnyxInput {
    /// Sign the request with the configured key (a request Telnyx sent).
    genuine: bool,
    skew_secs: i16,
    signature: Option<String>,
    timestamp: Option<String>,
    body: Vec<u8>,
}

fn telnyx_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

/// Verifies and parses a Telnyx webhook. A genuine request within the
/// tolerance must verify; nothing else may panic.
pub fn telnyx_webhook(data: &[u8]) {
    let Ok(input) = TelnyxInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let key = telnyx_key();
    let Ok(verifier) = iace_telnyx::WebhookVerifier::new(
        &STANDARD.encode(key.verifying_key().as_bytes()),
        TOLERANCE_SECS,
    ) else {
        panic!("the fuzz key is a valid public key");
    };
    let (signature, timestamp) = if input.genuine {
        let timestamp = (NOW + i64::from(input.skew_secs)).to_string();
        let mut message = format!("{timestamp}|").into_bytes();
        message.extend_from_slice(&input.body);
        let signature = STANDARD.encode(key.sign(&message).to_bytes());
        (Some(signature), Some(timestamp))
    } else {
        (input.signature, input.timestamp)
    };
    let verified = verifier.verify(signature.as_deref(), timestamp.as_deref(), &input.body, NOW);
    if input.genuine && u64::from(input.skew_secs.unsigned_abs()) <= TOLERANCE_SECS {
        assert!(verified.is_ok(), "a genuine request failed: {verified:?}");
    }
    // Only verified bodies reach the parser in the server, but Telnyx's own
    // bodies vary: the parser must take anything.
    if let Ok(event) = iace_telnyx::parse_event(&input.body) {
        let _ = format!("{event:?}");
    }
}

/// Stripe webhook: the `Stripe-Signature` header, then the event parser.
#[derive(Debug, Arbitrary)]
struct StripeInput {
    genuine: bool,
    skew_secs: i16,
    /// The header as sent, or what follows the genuine `t=…,v1=…`.
    header: String,
    body: Vec<u8>,
}

const STRIPE_SECRET: &str = "whsec_fuzz";

/// Verifies and parses a Stripe webhook. A genuine header within the
/// tolerance must verify whatever else it carries; nothing may panic.
pub fn stripe_signature(data: &[u8]) {
    let Ok(input) = StripeInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let verifier =
        iace_stripe::WebhookVerifier::new(SecretString::from(STRIPE_SECRET), TOLERANCE_SECS);
    let header = if input.genuine {
        let at = NOW + i64::from(input.skew_secs);
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(STRIPE_SECRET.as_bytes()) else {
            panic!("HMAC takes keys of any length");
        };
        mac.update(format!("{at}.").as_bytes());
        mac.update(&input.body);
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        // Extra items after a valid pair: other schemes, old secrets. A
        // second `t=` would replace the first, so none is added.
        let extra = input.header.replace("t=", "x=");
        format!("t={at},v1={hex},{extra}")
    } else {
        input.header
    };
    let verified = verifier.verify(Some(&header), &input.body, NOW);
    if input.genuine && u64::from(input.skew_secs.unsigned_abs()) <= TOLERANCE_SECS {
        assert!(
            verified.is_ok(),
            "a genuine header failed: {verified:?} ({header:?})"
        );
    }
    if let Ok(event) = iace_stripe::parse_event(&input.body) {
        let _ = format!("{event:?}");
    }
}

/// Decodes one media-stream text frame and reads a mark name; an audio
/// frame's payload is never bigger than the frame that carried it.
pub fn media_frame(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match iace_telnyx::media::decode(text) {
        Ok(InboundFrame::Media(chunk)) => {
            assert!(chunk.payload.len() <= text.len());
            // What the server would send back is valid JSON.
            let echo = OutboundFrame::Media(chunk.payload).encode();
            assert!(serde_json::from_str::<serde_json::Value>(&echo).is_ok());
        }
        Ok(InboundFrame::Mark { name }) => {
            let _ = parse_mark(&name);
        }
        Ok(frame) => {
            let _ = format!("{frame:?}");
        }
        Err(_) => {}
    }
    let _ = parse_mark(text);
    let echo = OutboundFrame::Mark(text.to_owned()).encode();
    assert!(serde_json::from_str::<serde_json::Value>(&echo).is_ok());
}

/// μ-law ⇄ linear: every code survives a round trip (μ-law's two zeros
/// become one), and every sample comes back within half its segment's step.
pub fn mulaw(data: &[u8]) {
    for &byte in data {
        let back = linear_to_mulaw(mulaw_to_linear(byte));
        let expected = if byte == 0x7F { MULAW_SILENCE } else { byte };
        assert_eq!(back, expected, "code {byte:#04x}");
    }
    for pair in data.chunks_exact(2) {
        let sample = i16::from_le_bytes([pair[0], pair[1]]);
        let decoded = mulaw_to_linear(linear_to_mulaw(sample));
        let error = (i32::from(decoded) - i32::from(sample).clamp(-32_635, 32_635)).abs();
        assert!(error <= 512, "{sample} came back as {decoded}");
    }
}

#[derive(Debug, Arbitrary)]
struct PhoneInput {
    number: String,
    default_country: String,
}

/// Phone numbers parse to E.164 or not at all: a parsed number is `+` and
/// 8 to 15 digits, parses to itself again, and prints masked.
pub fn phone_number(data: &[u8]) {
    let Ok(input) = PhoneInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let check = |number: &PhoneNumber| {
        let text = number.as_str();
        let digits = text.strip_prefix('+').unwrap_or_else(|| panic!("{text:?}"));
        assert!((8..=15).contains(&digits.len()), "{text:?}");
        assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{text:?}");
        assert!(!digits.starts_with('0'), "{text:?}");
        assert_eq!(number.digits(), digits);
        assert_eq!(PhoneNumber::parse(text).ok().as_ref(), Some(number));
        assert!(
            !format!("{number}").contains(digits),
            "{text:?} printed whole"
        );
        assert!(
            !format!("{number:?}").contains(digits),
            "{text:?} printed whole"
        );
    };
    if let Ok(number) = PhoneNumber::parse(&input.number) {
        check(&number);
    }
    if let Ok(number) =
        PhoneNumber::parse_with_default_country(&input.number, &input.default_country)
    {
        check(&number);
    }
}

#[derive(Debug, Arbitrary)]
struct TokenInput {
    /// Start from a token the server issued, then change it.
    genuine: bool,
    /// Where to change the genuine token, and to what.
    at: u8,
    replacement: u8,
    text: String,
}

const AUTH_SECRET: &str = "fuzz-secret-fuzz-secret-fuzz-secret";

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("a runtime: {e}"))
    })
}

/// An auth service whose stores know nobody: every credential must fail.
fn auth() -> &'static AuthService {
    static AUTH: OnceLock<AuthService> = OnceLock::new();
    AUTH.get_or_init(|| {
        let config = AuthConfig {
            hs256_secret: Some(SecretString::from(AUTH_SECRET)),
            ..AuthConfig::default()
        };
        let mut users = MockUserRepository::new();
        users
            .expect_get()
            .returning(|_, _| Err(StoreError::NotFound { entity: "user" }));
        let mut keys = MockApiKeyRepository::new();
        keys.expect_find_by_hash().returning(|_| Ok(None));
        let mut tokens = MockRefreshTokenRepository::new();
        tokens.expect_find_by_hash().returning(|_| Ok(None));
        AuthService::new(
            &config,
            Arc::new(MockOrgRepository::new()),
            Arc::new(users),
            Arc::new(tokens),
            Arc::new(keys),
            Arc::new(FixedClock::new(now())),
        )
        .unwrap_or_else(|e| panic!("the fuzz auth config is valid: {e}"))
    })
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(NOW, 0).unwrap_or_else(|| panic!("a valid instant"))
}

/// Bearer credentials (access JWTs, API keys), refresh tokens and
/// media-stream tokens: a genuine media token opens its call and no other;
/// nothing the stores do not know authenticates; nothing panics.
pub fn auth_token(data: &[u8]) {
    let Ok(input) = TokenInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let tokens =
        MediaTokens::derived_from(AUTH_SECRET.as_bytes(), std::time::Duration::from_secs(60));
    let call = CallId::new();
    let token = if input.genuine {
        let mut token = tokens.issue(call, now()).into_bytes();
        let at = usize::from(input.at) % token.len();
        token[at] = input.replacement;
        String::from_utf8_lossy(&token).into_owned()
    } else {
        input.text.clone()
    };
    match tokens.verify(&token, now()) {
        Ok(opened) => {
            assert!(input.genuine, "a token never issued opened {opened}");
            // A changed token may still open its call only where the change
            // is another spelling of the same value (a hex digit's case):
            // never another call.
            assert_eq!(opened, call);
        }
        Err(_) => {
            if input.genuine {
                assert_ne!(
                    token,
                    tokens.issue(call, now()),
                    "a genuine token was refused"
                );
            }
        }
    }
    runtime().block_on(async {
        for credential in [&input.text, &token] {
            let principal = auth().authenticate(credential).await;
            assert!(
                matches!(principal, Err(AppError::Unauthenticated { .. })),
                "{credential:?} → {principal:?}"
            );
            let pair = auth().refresh(credential).await;
            assert!(
                matches!(pair, Err(AppError::Unauthenticated { .. })),
                "{credential:?} → refresh {:?}",
                pair.map(|_| "a token pair")
            );
        }
    });
}

/// A fuzz target: the fuzzer's bytes in, a panic when a property breaks.
pub type Target = fn(&[u8]);

/// Every target by name, for the replay tests.
pub const TARGETS: &[(&str, Target)] = &[
    ("telnyx_webhook", telnyx_webhook),
    ("stripe_signature", stripe_signature),
    ("media_frame", media_frame),
    ("mulaw", mulaw),
    ("phone_number", phone_number),
    ("auth_token", auth_token),
];

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::TARGETS;

    /// Every file under `corpus/<target>/` (the seeds) and
    /// `regressions/<target>/` (inputs a run once crashed on), replayed.
    #[test]
    fn seeds_and_regressions_replay_cleanly() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut replayed = 0;
        for (name, target) in TARGETS {
            for dir in ["corpus", "regressions"] {
                let Ok(entries) = std::fs::read_dir(root.join(dir).join(name)) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let input = std::fs::read(entry.path()).expect("readable input");
                    target(&input);
                    replayed += 1;
                }
            }
        }
        assert!(
            replayed >= TARGETS.len(),
            "seeds are missing: {replayed} replayed"
        );
    }

    #[test]
    fn arbitrary_bytes_do_not_crash_any_target() {
        // A deterministic spread of inputs, for a run without libFuzzer.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for length in 0..512 {
            let input: Vec<u8> = (0..length)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state.to_le_bytes()[0]
                })
                .collect();
            for (_, target) in TARGETS {
                target(&input);
            }
        }
    }
}
