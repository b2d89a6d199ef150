//! A Server-Sent Events parser: bytes in, in whatever pieces the network
//! delivers them; events out. Pure: no I/O, no clock.
//!
//! It follows the event-stream rules that matter here: a line ends with
//! `\r\n`, `\n` or `\r` (a `\r\n` split between two pieces is still one line
//! end); a line starting with `:` is a comment; a field's value loses one
//! leading space; the `data` lines of one event are joined with `\n`; a blank
//! line dispatches the event (one without data is dropped).
//!
//! Two deliberate differences from the specification:
//! - A line that is neither a comment nor `data`, `event`, `id` or `retry` is
//!   an error, where the specification would ignore it. OpenAI-compatible
//!   servers send nothing else, so such a line means the body is not an event
//!   stream at all (an HTML error page, or a JSON body from a server that
//!   ignored `stream: true`), and ignoring it would turn that into a silent,
//!   empty reply.
//! - Lines and events are bounded (`max_line` bytes), so a server that never
//!   ends a line cannot grow the buffer without limit.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field, when the server named the event.
    pub(crate) event: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub(crate) data: String,
}

/// Why the bytes are not a usable event stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SseError {
    /// A line or an event's data grew past the bound.
    #[error("an event-stream line or event is longer than {limit} bytes")]
    TooLong {
        /// The bound.
        limit: usize,
    },
    /// A line is not UTF-8.
    #[error("an event-stream line is not UTF-8")]
    NotUtf8,
    /// A line that no event stream contains (its first characters).
    #[error("not an event stream: unexpected line `{0}`")]
    NotEventStream(String),
}

/// The fields of an event stream.
const FIELDS: [&str; 5] = ["data", "error", "event", "id", "retry"];

/// How much of an offending line an error quotes.
const QUOTED_CHARS: usize = 60;

/// The incremental parser.
#[derive(Debug)]
pub(crate) struct SseParser {
    /// Received bytes; those before `pos` are consumed.
    buf: Vec<u8>,
    pos: usize,
    /// The last line ended with `\r` at the end of the buffer: a `\n` that
    /// starts the next piece belongs to that line end.
    skip_lf: bool,
    /// No line was read yet (a leading byte-order mark is dropped).
    at_start: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
    max_line: usize,
}

impl SseParser {
    /// A parser refusing lines and events longer than `max_line` bytes.
    pub(crate) fn new(max_line: usize) -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            skip_lf: false,
            at_start: true,
            event: None,
            data: String::new(),
            has_data: false,
            max_line: max_line.max(1),
        }
    }

    /// Adds bytes as they arrived.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete event, or `None` until more bytes arrive.
    ///
    /// # Errors
    /// [`SseError`] when the bytes are not an event stream; the parser should
    /// not be used after that.
    pub(crate) fn next_event(&mut self) -> Result<Option<SseEvent>, SseError> {
        while let Some(line) = self.next_line()? {
            if let Some(event) = self.process(&line)? {
                return Ok(Some(event));
            }
        }
        Ok(None)
    }

    /// At the end of the body: the last event when the body ended without
    /// the blank line that would dispatch it (the specification drops such an
    /// event; the caller decides), or `None`. A last line cut inside its field
    /// name (`da`) is dropped.
    ///
    /// # Errors
    /// [`SseError`] when the last line is not an event-stream line.
    pub(crate) fn finish(&mut self) -> Result<Option<SseEvent>, SseError> {
        if self.pos < self.buf.len() {
            let rest = self.buf.split_off(self.pos);
            self.pos = self.buf.len();
            let line = std::str::from_utf8(&rest).map_err(|_| SseError::NotUtf8)?;
            let cut_in_field_name =
                !line.contains(':') && FIELDS.iter().any(|field| field.starts_with(line));
            if !cut_in_field_name && let Some(event) = self.process(line)? {
                return Ok(Some(event));
            }
        }
        self.process("")
    }

    fn next_line(&mut self) -> Result<Option<String>, SseError> {
        if self.skip_lf && self.pos < self.buf.len() {
            if self.buf[self.pos] == b'\n' {
                self.pos += 1;
            }
            self.skip_lf = false;
        }
        let pending = &self.buf[self.pos..];
        let Some(end) = pending.iter().position(|b| *b == b'\n' || *b == b'\r') else {
            if pending.len() > self.max_line {
                return Err(SseError::TooLong {
                    limit: self.max_line,
                });
            }
            return Ok(None);
        };
        if end > self.max_line {
            return Err(SseError::TooLong {
                limit: self.max_line,
            });
        }
        let ended_by_cr = pending[end] == b'\r';
        let line = std::str::from_utf8(&pending[..end])
            .map_err(|_| SseError::NotUtf8)?
            .to_owned();
        self.pos += end + 1;
        if ended_by_cr {
            match self.buf.get(self.pos) {
                Some(b'\n') => self.pos += 1,
                Some(_) => {}
                None => self.skip_lf = true,
            }
        }
        if self.at_start {
            self.at_start = false;
            if let Some(rest) = line.strip_prefix('\u{feff}') {
                return Ok(Some(rest.to_owned()));
            }
        }
        Ok(Some(line))
    }

    fn process(&mut self, line: &str) -> Result<Option<SseEvent>, SseError> {
        if line.is_empty() {
            let event = self.event.take();
            if !std::mem::take(&mut self.has_data) {
                return Ok(None);
            }
            return Ok(Some(SseEvent {
                event,
                data: std::mem::take(&mut self.data),
            }));
        }
        if line.starts_with(':') {
            return Ok(None);
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            // llama.cpp's server reports a streaming error as an `error:`
            // field: read it as the data of an `error` event.
            "data" | "error" => {
                if field == "error" {
                    self.event = Some("error".to_owned());
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
                if self.data.len() > self.max_line {
                    return Err(SseError::TooLong {
                        limit: self.max_line,
                    });
                }
            }
            "event" => self.event = Some(value.to_owned()),
            "id" | "retry" => {}
            _ => {
                return Err(SseError::NotEventStream(
                    line.chars().take(QUOTED_CHARS).collect(),
                ));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_field_is_an_error_event() {
        let mut parser = SseParser::new(1024);
        parser.push(b"error: {\"code\":500,\"message\":\"boom\"}\n\n");
        let event = parser.next_event().expect("parse").expect("an event");
        assert_eq!(event.event.as_deref(), Some("error"));
        assert_eq!(event.data, r#"{"code":500,"message":"boom"}"#);
    }

    fn data(text: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: text.to_owned(),
        }
    }

    /// Feeds `pieces` one after the other and collects every event.
    fn parse(pieces: &[&[u8]]) -> Result<Vec<SseEvent>, SseError> {
        let mut parser = SseParser::new(1_024);
        let mut events = Vec::new();
        for piece in pieces {
            parser.push(piece);
            while let Some(event) = parser.next_event()? {
                events.push(event);
            }
        }
        Ok(events)
    }

    const STREAM: &str = "data: {\"a\":1}\n\n: keep-alive\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n";

    #[test]
    fn events_are_dispatched_at_blank_lines() {
        let events = parse(&[STREAM.as_bytes()]).expect("parses");
        assert_eq!(
            events,
            vec![data("{\"a\":1}"), data("{\"b\":2}"), data("[DONE]")]
        );
    }

    #[test]
    fn any_split_of_the_bytes_gives_the_same_events() {
        let whole = parse(&[STREAM.as_bytes()]).expect("parses");
        let bytes = STREAM.as_bytes();
        for cut in 0..=bytes.len() {
            let (a, b) = bytes.split_at(cut);
            assert_eq!(parse(&[a, b]).expect("parses"), whole, "cut at {cut}");
        }
        let one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(parse(&one_by_one).expect("parses"), whole);
    }

    #[test]
    fn crlf_and_cr_line_ends_work_even_when_split() {
        let crlf = "data: x\r\n\r\ndata: y\r\n\r\n";
        assert_eq!(
            parse(&[crlf.as_bytes()]).expect("parses"),
            vec![data("x"), data("y")]
        );
        // The `\r` ends one piece and its `\n` starts the next.
        assert_eq!(
            parse(&[b"data: x\r", b"\n\r", b"\ndata: y\r\n\r\n"]).expect("parses"),
            vec![data("x"), data("y")]
        );
        assert_eq!(
            parse(&[b"data: x\r\rdata: y\r\r"]).expect("parses"),
            vec![data("x"), data("y")]
        );
    }

    #[test]
    fn multi_line_data_is_joined_and_fields_are_read() {
        let stream = "event: error\ndata: first\ndata:second\nid: 7\nretry: 10\n\n";
        assert_eq!(
            parse(&[stream.as_bytes()]).expect("parses"),
            vec![SseEvent {
                event: Some("error".to_owned()),
                data: "first\nsecond".to_owned(),
            }]
        );
    }

    #[test]
    fn blank_lines_and_comments_alone_dispatch_nothing() {
        assert!(parse(&[b"\n\n: ping\n\n\r\n"]).expect("parses").is_empty());
    }

    #[test]
    fn a_multi_byte_character_split_between_pieces_survives() {
        let text = "data: caf\u{e9} \u{1f600}\n\n".as_bytes();
        let (a, b) = text.split_at(10);
        assert_eq!(
            parse(&[a, b]).expect("parses"),
            vec![data("caf\u{e9} \u{1f600}")]
        );
    }

    #[test]
    fn a_leading_byte_order_mark_is_dropped() {
        assert_eq!(
            parse(&["\u{feff}data: x\n\n".as_bytes()]).expect("parses"),
            vec![data("x")]
        );
    }

    #[test]
    fn a_body_that_is_not_an_event_stream_is_refused() {
        let err = parse(&[b"<html><body>Bad gateway</body></html>\n"]).expect_err("not sse");
        assert!(matches!(err, SseError::NotEventStream(line) if line.starts_with("<html>")));
        assert!(matches!(
            parse(&[b"{\"id\":\"x\",\"choices\":[]}\n"]),
            Err(SseError::NotEventStream(_))
        ));
        assert_eq!(parse(&[b"data: \xff\n\n"]), Err(SseError::NotUtf8));
    }

    #[test]
    fn lines_and_events_are_bounded() {
        let mut parser = SseParser::new(16);
        parser.push(&[b'a'; 17]);
        assert_eq!(parser.next_event(), Err(SseError::TooLong { limit: 16 }));

        let mut parser = SseParser::new(16);
        parser.push(b"data: 0123456789\ndata: 0123456789\n");
        assert_eq!(parser.next_event(), Err(SseError::TooLong { limit: 16 }));
    }

    #[test]
    fn finish_returns_an_event_left_without_its_blank_line() {
        let finish = |bytes: &[u8]| {
            let mut parser = SseParser::new(1_024);
            parser.push(bytes);
            let mut events = Vec::new();
            while let Some(event) = parser.next_event().expect("parses") {
                events.push(event);
            }
            (events, parser.finish())
        };
        assert_eq!(finish(b"data: [DONE]"), (vec![], Ok(Some(data("[DONE]")))));
        assert_eq!(
            finish(b"data: [DONE]\n"),
            (vec![], Ok(Some(data("[DONE]"))))
        );
        assert_eq!(
            finish(b"data: x\n\nda"),
            (vec![data("x")], Ok(None)),
            "a line cut in its field name"
        );
        assert_eq!(
            finish(b"data: {\"cho"),
            (vec![], Ok(Some(data("{\"cho")))),
            "a line cut in its value: the caller sees the partial event"
        );
        assert_eq!(finish(b""), (vec![], Ok(None)));
        assert!(matches!(
            finish(b"<html>Bad gateway</html>").1,
            Err(SseError::NotEventStream(_))
        ));
    }
}
