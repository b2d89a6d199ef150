//! A hashing embedder (being written).
