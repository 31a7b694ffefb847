//! The file header: magic, version, clock and the recording process (40 bytes in version 1).

/// The first 8 bytes of every trace.
pub const MAGIC: [u8; 8] = *b"HKTRACE\0";
/// The format version this crate writes and reads.
pub const VERSION: u16 = 1;
/// The size of a version-1 header.
pub const HEADER_BYTES: usize = 40;
/// `clock`: timestamps are `CLOCK_MONOTONIC` readings.
pub const CLOCK_MONOTONIC: u8 = 1;
/// `clock`: timestamps are readings of the x86-64 time-stamp counter (invariant, synchronised
/// across cores), `tick_num_ns / tick_den` as measured by the recorder.
pub const CLOCK_TSC: u8 = 2;
/// `clock`: no clock, every timestamp is 0.
pub const CLOCK_NONE: u8 = 0;

/// A trace's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Which clock the timestamps come from ([`CLOCK_MONOTONIC`], [`CLOCK_TSC`] or
    /// [`CLOCK_NONE`]).
    pub clock: u8,
    /// One tick is `tick_num_ns / tick_den` nanoseconds.
    pub tick_num_ns: u32,
    /// See `tick_num_ns`; never 0.
    pub tick_den: u32,
    /// The clock's reading when recording started.
    pub start_ticks: u64,
    /// The recording process.
    pub pid: u32,
    /// The parent process when this trace was started by a `fork` child, else 0.
    pub parent_pid: u32,
}

impl Header {
    /// A header for process `pid` with nanosecond ticks of `CLOCK_MONOTONIC` from `start_ticks`.
    pub const fn monotonic_ns(pid: u32, start_ticks: u64) -> Header {
        Header {
            clock: CLOCK_MONOTONIC,
            tick_num_ns: 1,
            tick_den: 1,
            start_ticks,
            pid,
            parent_pid: 0,
        }
    }

    /// The header's bytes.
    pub fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut out = [0u8; HEADER_BYTES];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..10].copy_from_slice(&VERSION.to_le_bytes());
        out[10..12].copy_from_slice(&(HEADER_BYTES as u16).to_le_bytes());
        out[12] = self.clock;
        out[16..20].copy_from_slice(&self.tick_num_ns.to_le_bytes());
        out[20..24].copy_from_slice(&self.tick_den.to_le_bytes());
        out[24..32].copy_from_slice(&self.start_ticks.to_le_bytes());
        out[32..36].copy_from_slice(&self.pid.to_le_bytes());
        out[36..40].copy_from_slice(&self.parent_pid.to_le_bytes());
        out
    }

    /// Nanoseconds in `ticks` ticks (saturating).
    pub fn ticks_to_ns(&self, ticks: u64) -> u64 {
        let ns =
            u128::from(ticks) * u128::from(self.tick_num_ns) / u128::from(self.tick_den.max(1));
        u64::try_from(ns).unwrap_or(u64::MAX)
    }
}

const _: () = assert!(HEADER_BYTES <= u16::MAX as usize);
const _: () = assert!(MAGIC.len() == 8);
