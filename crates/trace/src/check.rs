//! The lifetime check: follows object ids through a trace, so that nothing is replayed
//! half-silently.

use crate::error::{ErrorKind, TraceError};
use crate::reader::Record;
use hashbrown::{HashMap, HashSet};

/// What a checked trace holds, and what a lenient check skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Events accepted.
    pub events: u64,
    /// Objects created.
    pub creations: u64,
    /// Bytes live at the end.
    pub final_live_bytes: u64,
    /// The most bytes live at once (in the order the records were given).
    pub peak_live_bytes: u64,
    /// Objects live at the end.
    pub final_live_objects: u64,
    /// Frees and reallocs of ids the trace did not create, accepted because the trace was
    /// started by a fork child (its parent created them).
    pub inherited: u64,
    /// Bad events a lenient check skipped.
    pub skipped: u64,
}

/// Follows object ids: every free and realloc must name a live id, every creation a new one.
#[derive(Debug, Default)]
pub struct LifetimeCheck {
    live: HashMap<u64, u64>,
    freed: HashSet<u64>,
    lenient: bool,
    inherits: bool,
    live_bytes: u64,
    summary: Summary,
}

impl LifetimeCheck {
    /// A strict check: the first bad event is an error. `inherits` accepts frees and reallocs of
    /// unknown ids (a fork child's trace, `parent_pid != 0`).
    pub fn new(inherits: bool) -> LifetimeCheck {
        LifetimeCheck {
            inherits,
            ..LifetimeCheck::default()
        }
    }

    /// A lenient check: bad events are skipped and counted.
    pub fn lenient(inherits: bool) -> LifetimeCheck {
        LifetimeCheck {
            lenient: true,
            ..LifetimeCheck::new(inherits)
        }
    }

    /// Takes the next record: `Ok(true)` to replay it, `Ok(false)` when a lenient check skipped
    /// it (or it is an inherited object's, which a replay cannot follow), an error for a bad
    /// event in a strict check. `offset` is where the record was read (for the message).
    pub fn accept(&mut self, record: &Record, offset: usize) -> Result<bool, TraceError> {
        match self.verdict(record) {
            Ok(replay) => {
                self.summary.events += u64::from(replay);
                Ok(replay)
            }
            Err(kind) if self.lenient => {
                let _ = kind;
                self.summary.skipped += 1;
                Ok(false)
            }
            Err(kind) => Err(TraceError {
                kind,
                offset,
                event_index: Some(record.index),
            }),
        }
    }

    fn verdict(&mut self, record: &Record) -> Result<bool, ErrorKind> {
        let event = &record.event;
        if event.kind.creates() {
            if self.live.contains_key(&event.id) {
                return Err(ErrorKind::LiveId(event.id));
            }
            self.freed.remove(&event.id);
            self.live.insert(event.id, event.size);
            self.summary.creations += 1;
            self.grow(event.size);
            return Ok(true);
        }
        let Some(&old_size) = self.live.get(&event.id) else {
            if self.freed.contains(&event.id) {
                return Err(ErrorKind::FreedId(event.id));
            }
            if self.inherits {
                self.summary.inherited += 1;
                return Ok(false);
            }
            return Err(ErrorKind::UnknownId(event.id));
        };
        self.live_bytes -= old_size;
        if event.kind.frees() {
            self.live.remove(&event.id);
            self.freed.insert(event.id);
        } else {
            self.live.insert(event.id, event.size);
            self.grow(event.size);
        }
        Ok(true)
    }

    fn grow(&mut self, bytes: u64) {
        self.live_bytes = self.live_bytes.saturating_add(bytes);
        self.summary.peak_live_bytes = self.summary.peak_live_bytes.max(self.live_bytes);
    }

    /// Bytes live now.
    pub fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    /// The summary so far.
    pub fn summary(&self) -> Summary {
        Summary {
            final_live_bytes: self.live_bytes,
            final_live_objects: self.live.len() as u64,
            ..self.summary.clone()
        }
    }
}
