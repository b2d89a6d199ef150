//! Simulated telephony: a [`TelephonyGateway`] that places no real calls.
//!
//! Every command is accepted and recorded, so a laptop install can drive the
//! whole call flow and tests can check what would have been sent to the
//! provider ([`SimulatedTelephony::commands`]). It opens no socket.
//!
//! - `dial` hands out a provider call id `sim:<uuid>`.
//! - After `hang_up`, every command on that provider call id answers
//!   [`CommandOutcome::CallAlreadyEnded`] (as a real provider does for a call
//!   that is over).
//! - Numbers that start with [`UNROUTABLE_PREFIX`] (`+1555000…`, a block of
//!   fictional numbers) and any number given to
//!   [`SimulatedTelephony::with_failing_numbers`] are refused by `dial` with
//!   [`ProviderError::Rejected`], so the failure path can be exercised end to
//!   end.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use iace_domain::ports::{
    AnswerOptions, CallHandle, CommandOutcome, DialRequest, DialResponse, MediaStreamSpec,
    ProviderError, TelephonyGateway, TransferTarget,
};
use iace_domain::{Language, PhoneNumber, Voice};

/// The provider name in errors.
const PROVIDER: &str = "local";

/// Dialled numbers starting with this prefix are refused as unroutable.
pub const UNROUTABLE_PREFIX: &str = "+1555000";

/// A command the simulated provider received, with its arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `dial`.
    Dial(DialRequest),
    /// `answer`.
    Answer {
        /// The call.
        call: CallHandle,
        /// The options.
        options: AnswerOptions,
    },
    /// `hang_up`.
    HangUp(CallHandle),
    /// `transfer`.
    Transfer {
        /// The call.
        call: CallHandle,
        /// Where to.
        target: TransferTarget,
    },
    /// `speak`.
    Speak {
        /// The call.
        call: CallHandle,
        /// What to say.
        text: String,
        /// The voice.
        voice: Voice,
        /// The language.
        language: Language,
    },
    /// `play_audio`.
    PlayAudio {
        /// The call.
        call: CallHandle,
        /// The audio's URL.
        url: String,
    },
    /// `stop_audio`.
    StopAudio(CallHandle),
    /// `start_streaming`.
    StartStreaming {
        /// The call.
        call: CallHandle,
        /// Where to stream.
        stream: MediaStreamSpec,
    },
    /// `stop_streaming`.
    StopStreaming(CallHandle),
    /// `start_recording`.
    StartRecording(CallHandle),
}

impl Command {
    /// The provider call id the command addresses (`None` for a dial, which
    /// creates one).
    #[must_use]
    pub fn provider_call_id(&self) -> Option<&str> {
        let call = match self {
            Self::Dial(_) => return None,
            Self::Answer { call, .. }
            | Self::Transfer { call, .. }
            | Self::Speak { call, .. }
            | Self::PlayAudio { call, .. }
            | Self::StartStreaming { call, .. }
            | Self::HangUp(call)
            | Self::StopAudio(call)
            | Self::StopStreaming(call)
            | Self::StartRecording(call) => call,
        };
        Some(&call.provider_call_id)
    }
}

/// The embedded telephony provider (see the module documentation).
#[derive(Debug, Default)]
pub struct SimulatedTelephony {
    /// Numbers `dial` refuses, besides those with [`UNROUTABLE_PREFIX`].
    failing: HashSet<PhoneNumber>,
    /// Every command received, in order.
    commands: Mutex<Vec<Command>>,
    /// Provider call ids that were hung up.
    ended: Mutex<HashSet<String>>,
}

/// A poisoned lock only means another thread panicked while recording; the
/// data (a log of commands) is still consistent, so keep using it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SimulatedTelephony {
    /// A simulated provider that refuses only [`UNROUTABLE_PREFIX`] numbers.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Also refuses to dial these numbers.
    #[must_use]
    pub fn with_failing_numbers(mut self, numbers: impl IntoIterator<Item = PhoneNumber>) -> Self {
        self.failing.extend(numbers);
        self
    }

    /// Every command received so far, in order (for tests and diagnostics).
    #[must_use]
    pub fn commands(&self) -> Vec<Command> {
        lock(&self.commands).clone()
    }

    /// Whether `dial` refuses this number.
    #[must_use]
    pub fn is_unroutable(&self, number: &PhoneNumber) -> bool {
        number.as_str().starts_with(UNROUTABLE_PREFIX) || self.failing.contains(number)
    }

    fn record(&self, command: Command) {
        lock(&self.commands).push(command);
    }

    /// Records a command on a call and answers whether the call is still up.
    fn command(&self, command: Command) -> CommandOutcome {
        let ended = command
            .provider_call_id()
            .is_some_and(|id| lock(&self.ended).contains(id));
        self.record(command);
        if ended {
            CommandOutcome::CallAlreadyEnded
        } else {
            CommandOutcome::Accepted
        }
    }
}

#[async_trait]
impl TelephonyGateway for SimulatedTelephony {
    async fn dial(&self, request: &DialRequest) -> Result<DialResponse, ProviderError> {
        let unroutable = self.is_unroutable(&request.to);
        self.record(Command::Dial(request.clone()));
        if unroutable {
            tracing::debug!(call_id = %request.call_id, to = %request.to, "simulated dial refused");
            return Err(ProviderError::Rejected {
                provider: PROVIDER,
                status: Some(422),
                detail: "the destination number is unroutable".to_owned(),
            });
        }
        let provider_call_id = format!("sim:{}", uuid::Uuid::new_v4());
        tracing::debug!(call_id = %request.call_id, %provider_call_id, "simulated dial");
        Ok(DialResponse {
            provider_call_id,
            provider_session_id: None,
        })
    }

    async fn answer(
        &self,
        call: &CallHandle,
        options: &AnswerOptions,
    ) -> Result<CommandOutcome, ProviderError> {
        Ok(self.command(Command::Answer {
            call: call.clone(),
            options: options.clone(),
        }))
    }

    async fn hang_up(&self, call: &CallHandle) -> Result<CommandOutcome, ProviderError> {
        let outcome = self.command(Command::HangUp(call.clone()));
        lock(&self.ended).insert(call.provider_call_id.clone());
        Ok(outcome)
    }

    async fn transfer(
        &self,
        call: &CallHandle,
        target: &TransferTarget,
    ) -> Result<CommandOutcome, ProviderError> {
        Ok(self.command(Command::Transfer {
            call: call.clone(),
            target: target.clone(),
        }))
    }

    async fn speak(
        &self,
        call: &CallHandle,
        text: &str,
        voice: &Voice,
        language: &Language,
    ) -> Result<CommandOutcome, ProviderError> {
        Ok(self.command(Command::Speak {
            call: call.clone(),
            text: text.to_owned(),
            voice: voice.clone(),
            language: language.clone(),
        }))
    }

    async fn play_audio(
        &self,
        call: &CallHandle,
        url: &str,
    ) -> Result<CommandOutcome, ProviderError> {
        Ok(self.command(Command::PlayAudio {
            call: call.clone(),
            url: url.to_owned(),
        }))
    }

    async fn stop_audio(&self, call: &CallHandle) -> Result<CommandOutcome, ProviderError> {
        Ok(self.command(Command::StopAudio(call.clone())))
    }

    async fn start_streaming(
        &self,
        call: &CallHandle,
        stream: &MediaStreamSpec,
    ) -> Result<CommandOutcome, ProviderError> {
        Ok(self.command(Command::StartStreaming {
            call: call.clone(),
            stream: stream.clone(),
        }))
    }

    async fn stop_streaming(&self, call: &CallHandle) -> Result<CommandOutcome, ProviderError> {
        Ok(self.command(Command::StopStreaming(call.clone())))
    }

    async fn start_recording(&self, call: &CallHandle) -> Result<CommandOutcome, ProviderError> {
        Ok(self.command(Command::StartRecording(call.clone())))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use iace_domain::CallId;
    use iace_domain::ports::{AudioFormat, MachineDetection};

    use super::*;

    fn number(raw: &str) -> PhoneNumber {
        PhoneNumber::parse(raw).expect("valid number")
    }

    fn dial_to(to: &str) -> DialRequest {
        DialRequest {
            call_id: CallId::new(),
            from: number("+14155550100"),
            to: number(to),
            media_stream: None,
            machine_detection: MachineDetection::Disabled,
            ring_timeout: Duration::from_secs(30),
            connection: None,
        }
    }

    async fn dialled(telephony: &SimulatedTelephony) -> CallHandle {
        let request = dial_to("+442079460958");
        let response = telephony.dial(&request).await.expect("dial");
        CallHandle {
            call_id: request.call_id,
            provider_call_id: response.provider_call_id,
        }
    }

    #[tokio::test]
    async fn dial_hands_out_sim_ids_and_records_the_request() {
        let telephony = SimulatedTelephony::new();
        let request = dial_to("+442079460958");
        let first = telephony.dial(&request).await.expect("dial");
        let second = telephony.dial(&request).await.expect("dial");
        assert!(first.provider_call_id.starts_with("sim:"));
        assert!(uuid::Uuid::parse_str(&first.provider_call_id["sim:".len()..]).is_ok());
        assert_ne!(first.provider_call_id, second.provider_call_id);
        assert_eq!(
            telephony.commands(),
            vec![Command::Dial(request.clone()), Command::Dial(request)]
        );
    }

    #[tokio::test]
    async fn unroutable_and_configured_numbers_are_rejected() {
        let telephony = SimulatedTelephony::new().with_failing_numbers([number("+442079460999")]);
        for to in ["+15550001234", "+442079460999"] {
            let err = telephony.dial(&dial_to(to)).await;
            assert!(
                matches!(
                    err,
                    Err(ProviderError::Rejected {
                        provider: "local",
                        ..
                    })
                ),
                "{to}: {err:?}"
            );
        }
        assert!(telephony.dial(&dial_to("+15551001234")).await.is_ok());
        assert_eq!(
            telephony.commands().len(),
            3,
            "refused dials are recorded too"
        );
        let refused = telephony.dial(&dial_to("+15550009999")).await;
        assert!(refused.is_err_and(|e| !e.is_retryable()));
    }

    #[tokio::test]
    async fn every_command_is_accepted_until_the_call_is_hung_up() {
        let telephony = SimulatedTelephony::new();
        let call = dialled(&telephony).await;
        let voice = Voice {
            name: "aura-2-thalia-en".into(),
            speed: 1.0,
        };
        let stream = MediaStreamSpec {
            url: "wss://localhost/media/1".into(),
            format: AudioFormat::TELEPHONY,
            auth_token: None,
        };
        let target = TransferTarget::Sip {
            uri: "sip:ana@pbx.example.com".into(),
        };
        let language = Language::default();
        let options = AnswerOptions { media_stream: None };
        for _ in 0..2 {
            let outcomes = [
                telephony.answer(&call, &options).await,
                telephony.start_streaming(&call, &stream).await,
                telephony.speak(&call, "Hello", &voice, &language).await,
                telephony.play_audio(&call, "https://a.example/x.mp3").await,
                telephony.stop_audio(&call).await,
                telephony.start_recording(&call).await,
                telephony.transfer(&call, &target).await,
                telephony.stop_streaming(&call).await,
            ];
            let expected = if telephony
                .commands()
                .iter()
                .any(|c| matches!(c, Command::HangUp(_)))
            {
                CommandOutcome::CallAlreadyEnded
            } else {
                CommandOutcome::Accepted
            };
            for outcome in outcomes {
                assert_eq!(outcome.expect("command"), expected);
            }
            telephony.hang_up(&call).await.expect("hang up");
        }
        let commands = telephony.commands();
        assert_eq!(commands.len(), 1 + 2 * 9);
        assert_eq!(
            commands[7],
            Command::Transfer {
                call: call.clone(),
                target
            }
        );
        assert!(
            commands[1..]
                .iter()
                .all(|c| c.provider_call_id() == Some(call.provider_call_id.as_str()))
        );
    }

    #[tokio::test]
    async fn hanging_up_twice_reports_the_call_already_ended() {
        let telephony = SimulatedTelephony::new();
        let call = dialled(&telephony).await;
        let other = dialled(&telephony).await;
        assert_eq!(
            telephony.hang_up(&call).await.expect("hang up"),
            CommandOutcome::Accepted
        );
        assert_eq!(
            telephony.hang_up(&call).await.expect("hang up"),
            CommandOutcome::CallAlreadyEnded
        );
        assert_eq!(
            telephony.hang_up(&other).await.expect("other call"),
            CommandOutcome::Accepted,
            "only the call that was hung up has ended"
        );
    }
}
