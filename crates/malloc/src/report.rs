//! The reports this library prints about its heap, formatted on the stack ([`Sink`]): the
//! program-level statistics (`HEAPKIT_SHOW_STATS`, `malloc_stats`), with the pid on every line,
//! and `malloc_info`'s XML document.

use crate::heap::HEAP;
use crate::sink::{Out, Sink};
use core::fmt::{self, Write};
use heapkit_core::StackMessage;

/// `heapkit[<pid>]: `, the start of every statistics line, so that the lines of a parent and
/// its children can be told apart.
fn pid_prefix() -> StackMessage {
    let mut prefix = StackMessage::new();
    // SAFETY: `getpid` has no preconditions.
    let pid = unsafe { libc::getpid() };
    let _ = write!(prefix, "heapkit[{pid}]: ");
    prefix
}

/// Prints the program-level statistics (`heapkit::ProgramStats`) to stderr, one figure group
/// per line, each line starting with `heapkit[<pid>]: `; then, while counting (`calls.rs`), the
/// calls of each function. Never allocates.
pub fn print_stats() {
    let prefix = pid_prefix();
    let prefix = core::str::from_utf8(prefix.as_bytes()).unwrap_or("heapkit: ");
    let mut sink = Sink::new(Out::Stderr, prefix);
    let _ = write!(sink, "{}", HEAP.program_stats());
    if crate::calls::counting() {
        let _ = writeln!(sink, "{}", crate::calls::CallCounts);
    }
}

/// Writes `malloc_info`'s XML document to `file`: per size class that holds anything, its
/// blocks held, cached and free and its slabs; then totals and the system figures. Whether
/// every write succeeded.
///
/// # Safety
/// `file` is an open `FILE *`.
pub unsafe fn write_info(file: *mut libc::FILE) -> bool {
    let mut sink = Sink::new(Out::File(file), "");
    let _ = info_document(&mut sink);
    sink.flush()
}

fn info_document(out: &mut impl Write) -> fmt::Result {
    let stats = HEAP.program_stats();
    writeln!(out, "<malloc version=\"1\" allocator=\"heapkit\">")?;
    writeln!(out, "<heap nr=\"0\">")?;
    writeln!(out, "<sizes>")?;
    let mut result = Ok(());
    HEAP.for_each_class(|class| {
        if result.is_ok() && (class.slabs != 0 || class.cached_blocks != 0) {
            result = writeln!(
                out,
                "<size class=\"{}\" block=\"{}\" held=\"{}\" cached=\"{}\" free=\"{}\" slabs=\"{}\"/>",
                class.class,
                class.block_bytes,
                class.held_blocks,
                class.cached_blocks,
                class.free_blocks,
                class.slabs
            );
        }
    });
    result?;
    writeln!(out, "</sizes>")?;
    let totals = [
        ("held", stats.held_blocks, stats.held_bytes),
        ("cached", stats.cached_blocks, stats.cached_bytes),
        ("huge", stats.huge_blocks, stats.huge_mapped_bytes),
    ];
    for (kind, count, bytes) in totals {
        writeln!(
            out,
            "<total type=\"{kind}\" count=\"{count}\" size=\"{bytes}\"/>"
        )?;
    }
    let system = [
        ("mapped", stats.mapped_bytes),
        ("retained", stats.retained_bytes),
        ("dirty", stats.dirty_bytes),
        ("purged", stats.purged_bytes),
        ("metadata", stats.metadata_bytes),
        ("resident", stats.resident_bytes),
        ("max_resident", stats.peak_resident_bytes),
    ];
    for (kind, bytes) in system {
        writeln!(out, "<system type=\"{kind}\" size=\"{bytes}\"/>")?;
    }
    writeln!(out, "</heap>")?;
    writeln!(out, "</malloc>")
}
