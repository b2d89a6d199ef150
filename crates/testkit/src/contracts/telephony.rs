//! `TelephonyGateway` contract: dial, every call command, a call that has
//! already ended (benign), refused numbers, provider failures.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use iace_domain::ports::{
    AnswerOptions, AudioFormat, CallHandle, CommandOutcome, DialRequest, MachineDetection,
    MediaStreamSpec, ProviderError, TelephonyGateway, TransferTarget,
};
use iace_domain::{CallId, Language, PhoneNumber, Voice};

use super::provider_failure::{self, Failure};

/// Makes gateways whose provider behaves as asked; `None` skips the case.
#[async_trait]
pub trait TelephonyFixture: Send + Sync {
    /// A provider that accepts every command.
    async fn accepting(&self) -> Arc<dyn TelephonyGateway>;
    /// A provider and a call it considers over: every command on it answers
    /// "call already ended".
    async fn ended_call(&self) -> (Arc<dyn TelephonyGateway>, CallHandle);
    /// A provider that refuses to dial `to` (undialable / not ours).
    async fn refusing(&self, to: &PhoneNumber) -> Option<Arc<dyn TelephonyGateway>>;
    /// The provider fails this way.
    async fn failing(&self, failure: Failure) -> Option<Arc<dyn TelephonyGateway>>;
}

fn number(raw: &str) -> PhoneNumber {
    PhoneNumber::parse(raw).expect("number")
}

fn dial_request(to: &str) -> DialRequest {
    DialRequest {
        call_id: CallId::new(),
        from: number("+14155550100"),
        to: number(to),
        media_stream: Some(stream()),
        machine_detection: MachineDetection::Detect,
        ring_timeout: Duration::from_secs(30),
        connection: None,
    }
}

fn stream() -> MediaStreamSpec {
    MediaStreamSpec {
        url: "wss://iace.example.com/media/abc?token=t".into(),
        format: AudioFormat::TELEPHONY,
        auth_token: None,
    }
}

/// Every command once on `call`, with its name.
async fn every_command(
    gateway: &dyn TelephonyGateway,
    call: &CallHandle,
) -> Vec<(&'static str, Result<CommandOutcome, ProviderError>)> {
    let voice = Voice {
        name: "female".into(),
        speed: 1.0,
    };
    let language = Language::parse("en-US").expect("language");
    vec![
        (
            "answer",
            gateway
                .answer(
                    call,
                    &AnswerOptions {
                        media_stream: Some(stream()),
                    },
                )
                .await,
        ),
        (
            "speak",
            gateway
                .speak(call, "One moment please.", &voice, &language)
                .await,
        ),
        (
            "play_audio",
            gateway
                .play_audio(call, "https://cdn.example.com/hold.mp3")
                .await,
        ),
        ("stop_audio", gateway.stop_audio(call).await),
        (
            "start_streaming",
            gateway.start_streaming(call, &stream()).await,
        ),
        ("stop_streaming", gateway.stop_streaming(call).await),
        ("start_recording", gateway.start_recording(call).await),
        (
            "transfer",
            gateway
                .transfer(
                    call,
                    &TransferTarget::Phone {
                        number: number("+14155550199"),
                    },
                )
                .await,
        ),
        ("hang_up", gateway.hang_up(call).await),
    ]
}

/// Runs every case.
pub async fn run<F: TelephonyFixture>(fixture: &F) {
    super::announce("telephony: dial, then every command is accepted");
    let gateway = fixture.accepting().await;
    let request = dial_request("+442079460958");
    let dialled = gateway.dial(&request).await.expect("dial");
    assert!(!dialled.provider_call_id.is_empty());
    let call = CallHandle {
        call_id: request.call_id,
        provider_call_id: dialled.provider_call_id,
    };
    for (name, outcome) in every_command(gateway.as_ref(), &call).await {
        assert_eq!(
            outcome.unwrap_or_else(|e| panic!("{name}: {e:?}")),
            CommandOutcome::Accepted,
            "{name}"
        );
    }

    super::announce("telephony: commands on an ended call are benign");
    let (gateway, ended) = fixture.ended_call().await;
    for (name, outcome) in every_command(gateway.as_ref(), &ended).await {
        assert_eq!(
            outcome.unwrap_or_else(|e| panic!("{name}: {e:?}")),
            CommandOutcome::CallAlreadyEnded,
            "{name}"
        );
    }

    let refused = "+15550001234";
    if let Some(gateway) = fixture.refusing(&number(refused)).await {
        super::announce("telephony: a refused number is Rejected");
        let err = gateway
            .dial(&dial_request(refused))
            .await
            .expect_err("refused");
        assert!(matches!(err, ProviderError::Rejected { .. }), "{err:?}");
        assert!(!err.is_retryable());
    }

    for failure in provider_failure::ALL {
        let Some(gateway) = fixture.failing(failure).await else {
            continue;
        };
        let case = format!("telephony: {failure:?}");
        super::announce(&case);
        let err = gateway
            .dial(&dial_request("+442079460958"))
            .await
            .expect_err("dial fails");
        provider_failure::assert_maps(&case, failure, &err);
        if failure != Failure::Malformed {
            // Commands have no body worth decoding; the rest applies to them too.
            let call = CallHandle {
                call_id: CallId::new(),
                provider_call_id: "v3:abc".into(),
            };
            let err = gateway.hang_up(&call).await.expect_err("hang-up fails");
            provider_failure::assert_maps(&format!("{case} (hang_up)"), failure, &err);
        }
    }
}
