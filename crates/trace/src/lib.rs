#![doc = include_str!("../README.md")]
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_code)]

//! # Vocabulary
//!
//! - **trace**: a header and a sequence of chunks (`docs/trace-format.md` is the specification).
//! - **header** ([`Header`]): magic, version, clock, the recording process.
//! - **chunk**: one thread's events, flushed as one `write`; its header carries the thread
//!   number and the bases the events' deltas start from.
//! - **event** ([`Event`]): one call — a [`Kind`], an object id, a size, an alignment and a
//!   timestamp in ticks.
//! - **record** ([`Record`]): an event as the reader returns it, with its thread and its index
//!   in the file.
//! - **object id**: a number the recorder gives each block (never an address); `realloc` keeps
//!   it.
//! - **time order** ([`in_time_order`]): the records of all threads merged by timestamp, an
//!   operation on an object never before the object's creation (order.rs).
//! - **varint**: LEB128 (`uleb`) and zigzag LEB128 (`sleb`) numbers (varint.rs).
//!
//! ```text
//!   recorder (no_std, no heap)            tools (std)
//!   ChunkEncoder ──► chunk bytes ──► file ──► Reader ──► in_time_order ──► LifetimeCheck ──► replay
//! ```

mod encoder;
mod event;
mod header;
mod varint;

#[cfg(feature = "std")]
mod check;
#[cfg(feature = "std")]
mod error;
#[cfg(feature = "std")]
mod order;
#[cfg(feature = "std")]
mod reader;
#[cfg(feature = "std")]
mod writer;

pub use encoder::{ChunkEncoder, Full, CHUNK_HEADER_MAX_BYTES, EVENT_MAX_BYTES};
pub use event::{Event, Kind, DEFAULT_ALIGN_LOG2};
pub use header::{Header, CLOCK_MONOTONIC, CLOCK_NONE, CLOCK_TSC, HEADER_BYTES, MAGIC, VERSION};
pub use varint::{decode_uleb, encode_uleb, unzigzag, zigzag, ULEB_MAX_BYTES};

#[cfg(feature = "std")]
pub use check::{LifetimeCheck, Summary};
#[cfg(feature = "std")]
pub use error::{ErrorKind, TraceError};
#[cfg(feature = "std")]
pub use order::in_time_order;
#[cfg(feature = "std")]
pub use reader::{Reader, Record};
#[cfg(feature = "std")]
pub use writer::TraceWriter;

/// The byte that opens every chunk.
pub const CHUNK_MARKER: u8 = 0xC7;
