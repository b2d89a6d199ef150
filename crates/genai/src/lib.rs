//! iace-genai: placeholder until the adapter lands (issue 6).
