//! Local fakes of the remote providers, speaking their documented wire
//! formats, shared by the adapters' own tests and the API's end-to-end tests.
//! Convention: **the audio of a text is its UTF-8 bytes**, so a test says
//! and hears text.

pub mod deepgram;
pub mod openai;
