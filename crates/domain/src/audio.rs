//! G.711 μ-law, the telephone network's 8-bit audio encoding, to and from
//! 16-bit linear PCM (ITU-T G.711, the segment-and-bias form every phone
//! system uses).
//!
//! Media streams carry μ-law end to end; linear samples are needed only where
//! audio is measured or handed to something that expects PCM (a WAV file any
//! player opens, a level meter).

/// Added to a sample's magnitude before encoding, so that every segment's
/// boundary falls on a power of two.
const BIAS: i32 = 0x84;
/// The largest magnitude that encodes without clipping.
const CLIP: i32 = 32_635;

/// μ-law's "positive zero": what silence is on a phone line.
pub const MULAW_SILENCE: u8 = 0xFF;

/// Decodes one μ-law byte to a linear sample in `-32_124..=32_124`.
#[must_use]
pub fn mulaw_to_linear(byte: u8) -> i16 {
    let byte = !byte;
    let exponent = (byte >> 4) & 0x07;
    let mantissa = i32::from(byte & 0x0F);
    let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    // `magnitude` is at most (15·8 + 132)·128 − 132 = 32 124: it fits.
    #[allow(clippy::cast_possible_truncation)]
    let magnitude = magnitude as i16;
    if byte & 0x80 == 0 {
        magnitude
    } else {
        -magnitude
    }
}

/// Encodes one linear sample to μ-law, clipping magnitudes beyond what
/// μ-law can represent.
#[must_use]
pub fn linear_to_mulaw(sample: i16) -> u8 {
    let sample = i32::from(sample);
    let (sign, magnitude) = if sample < 0 {
        (0x80, -sample)
    } else {
        (0x00, sample)
    };
    let magnitude = magnitude.min(CLIP) + BIAS;
    // The segment: the position of the highest set bit above bit 7.
    let mut exponent = 7;
    while exponent > 0 && magnitude & (0x80 << exponent) == 0 {
        exponent -= 1;
    }
    let mantissa = (magnitude >> (exponent + 3)) & 0x0F;
    // Every part is masked to its bits: the byte holds them exactly.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let byte = (sign | (exponent << 4) | mantissa) as u8;
    !byte
}

/// Decodes a μ-law buffer to linear samples.
#[must_use]
pub fn decode_mulaw(bytes: &[u8]) -> Vec<i16> {
    bytes.iter().map(|&b| mulaw_to_linear(b)).collect()
}

/// Encodes linear samples to μ-law.
#[must_use]
pub fn encode_mulaw(samples: &[i16]) -> Vec<u8> {
    samples.iter().map(|&s| linear_to_mulaw(s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_survives_a_round_trip_except_negative_zero() {
        for byte in 0..=u8::MAX {
            let back = linear_to_mulaw(mulaw_to_linear(byte));
            if byte == 0x7F {
                // μ-law has two zeros; linear has one, which encodes as +0.
                assert_eq!(back, MULAW_SILENCE);
            } else {
                assert_eq!(back, byte, "code {byte:#04x}");
            }
        }
    }

    #[test]
    fn known_values_match_g711() {
        // Reference points of the G.711 μ-law table.
        assert_eq!(mulaw_to_linear(0xFF), 0);
        assert_eq!(mulaw_to_linear(0x7F), 0);
        assert_eq!(mulaw_to_linear(0x80), 32_124);
        assert_eq!(mulaw_to_linear(0x00), -32_124);
        assert_eq!(mulaw_to_linear(0xFE), 8);
        assert_eq!(mulaw_to_linear(0xEF), 132);
        assert_eq!(linear_to_mulaw(0), 0xFF);
        assert_eq!(linear_to_mulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_mulaw(i16::MIN), 0x00);
        assert_eq!(linear_to_mulaw(-1), 0x7F);
    }

    #[test]
    fn encoding_is_monotonic_and_the_error_stays_within_the_segment_step() {
        let mut previous = mulaw_to_linear(linear_to_mulaw(i16::MIN));
        for sample in i16::MIN..=i16::MAX {
            let decoded = mulaw_to_linear(linear_to_mulaw(sample));
            assert!(decoded >= previous, "not monotonic at {sample}");
            previous = decoded;
            let clipped = i32::from(sample).clamp(-CLIP, CLIP);
            let error = (i32::from(decoded) - clipped).abs();
            // The step in the top segment is 1 024: half of it, plus the
            // clipping of the very largest magnitudes.
            assert!(error <= 1_024, "sample {sample} came back as {decoded}");
            // Small samples keep their precision.
            if clipped.abs() < 100 {
                assert!(error <= 8, "sample {sample} came back as {decoded}");
            }
        }
    }

    #[test]
    fn buffers_convert_sample_by_sample() {
        let samples = decode_mulaw(&[0xFF, 0x80, 0x00]);
        assert_eq!(samples, [0, 32_124, -32_124]);
        assert_eq!(encode_mulaw(&samples), [0xFF, 0x80, 0x00]);
    }
}
