//! iace-telnyx: placeholder until the adapter lands (issue 6).
