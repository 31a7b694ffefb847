//! LEB128 varints: `uleb` (unsigned) and `sleb` (zigzag-mapped signed), as the format defines.

/// The most bytes a `u64` takes as a uleb.
pub const ULEB_MAX_BYTES: usize = 10;

/// Writes `value` as a uleb at the start of `out`; returns the bytes written, or `None` when
/// `out` is too short (nothing meaningful is left in `out` then).
#[inline]
pub fn encode_uleb(mut value: u64, out: &mut [u8]) -> Option<usize> {
    let mut written = 0;
    loop {
        let byte = (value & 0x7F) as u8;
        value >>= 7;
        let slot = out.get_mut(written)?;
        written += 1;
        if value == 0 {
            *slot = byte;
            return Some(written);
        }
        *slot = byte | 0x80;
    }
}

/// Reads a uleb from the start of `input`: the value and the bytes it took, or `None` when the
/// input ends inside it or it is overlong (more than 10 bytes, or a 10th byte above 1).
#[inline]
pub fn decode_uleb(input: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (index, &byte) in input.iter().enumerate().take(ULEB_MAX_BYTES) {
        let bits = u64::from(byte & 0x7F);
        if index == ULEB_MAX_BYTES - 1 && byte > 1 {
            return None;
        }
        value |= bits << (7 * index);
        if byte & 0x80 == 0 {
            return Some((value, index + 1));
        }
    }
    None
}

/// Maps a signed value to unsigned so that small magnitudes stay small: 0, -1, 1, -2 … → 0, 1,
/// 2, 3 ….
#[inline]
pub const fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// The inverse of [`zigzag`].
#[inline]
pub const fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uleb_round_trips_edges() {
        for value in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut buf = [0u8; ULEB_MAX_BYTES];
            let len = encode_uleb(value, &mut buf).unwrap();
            assert_eq!(decode_uleb(&buf[..len]), Some((value, len)));
        }
        let mut buf = [0u8; ULEB_MAX_BYTES];
        assert_eq!(encode_uleb(u64::MAX, &mut buf), Some(10));
        assert_eq!(encode_uleb(128, &mut buf[..1]), None);
    }

    #[test]
    fn uleb_refuses_truncated_and_overlong() {
        assert_eq!(decode_uleb(&[0x80]), None);
        assert_eq!(decode_uleb(&[]), None);
        assert_eq!(decode_uleb(&[0xFF; 10]), None);
        let mut eleven = [0x80u8; 11];
        eleven[10] = 0;
        assert_eq!(decode_uleb(&eleven), None);
    }

    #[test]
    fn zigzag_round_trips() {
        for value in [0, -1, 1, -2, 2, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(value)), value);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }
}
