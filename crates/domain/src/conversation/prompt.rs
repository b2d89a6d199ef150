//! Placeholder: the prompt builder is being written (see the session note).
