//! Placeholder: the sentence chunker is being written (see the session note).
