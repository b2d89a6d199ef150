//! iace-groq: placeholder until the adapter lands (issue 6).
