//! The allocation trace recorder (`HEAPKIT_TRACE=path`, with the `trace` feature): every
//! `malloc`, `calloc`, `realloc`, `free`, aligned allocation and C++ `new`/`delete`, in the
//! format of `docs/trace-format.md`.
//!
//! - **Hearing of the calls**: through the divert (`divert.rs`), turned on when recording
//!   starts: when off, `malloc` and `free` pay nothing, the other entry points one relaxed load
//!   and a branch; without the feature, the same.
//! - **Per-thread buffers**: each thread encodes into its own buffer (one mapping from the
//!   kernel, never from the traced heap) with heapkit-trace's `ChunkEncoder`, and writes a
//!   whole chunk with one `write` on an `O_APPEND` file when the buffer is full, at thread exit
//!   (a `pthread_key_create` destructor), before `fork` and at `exit`. No lock is shared between
//!   threads: a buffer's own flag is taken by its thread per event and, only at `exit`, by the
//!   thread that flushes every buffer.
//! - **Object ids**: one process-wide counter, and the address → id table of `trace_ids.rs`.
//! - **Recursion**: a per-thread flag keeps calls made while recording (none expected:
//!   `pthread_setspecific` may `calloc`) out of the trace.
//! - **fork**: the child closes the parent's file and opens its own (`%p` is its pid; a path
//!   without `%p` gets `.<pid>` appended), with `parent_pid` in its header.

use crate::trace_clock as clock;
use crate::trace_ids;
use core::cell::Cell;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use heapkit_trace::{ChunkEncoder, Event, Header, Kind};

/// Whether events are recorded: set once by the library constructor when the file is open
/// (and the divert on), cleared by a fork child that cannot open its file. Read only on the
/// divert's cold paths.
pub(crate) static TRACING: AtomicBool = AtomicBool::new(false);

/// Whether events are being recorded.
#[inline(always)]
pub(crate) fn tracing() -> bool {
    TRACING.load(Ordering::Relaxed)
}

/// The trace file (-1 before it is open).
static FILE: AtomicI32 = AtomicI32::new(-1);
/// The next object id (ids start at 1).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// The next thread number.
static NEXT_THREAD: AtomicU64 = AtomicU64::new(0);
/// Objects that went untraced for want of room in the id table, and chunks that failed to write.
static LOST: AtomicU64 = AtomicU64::new(0);
/// The key whose destructor flushes a thread's buffer at its exit.
static EXIT_KEY: AtomicU32 = AtomicU32::new(u32::MAX);
/// This process's pid (for `%p` and a fork child's `parent_pid`).
static PID: AtomicU32 = AtomicU32::new(0);

/// The path template, copied from the environment (NUL-terminated).
static PATH: PathTemplate = PathTemplate::new();

/// Bytes of a thread's buffer mapping, its encoder state included.
const BUFFER_MAPPING_BYTES: usize = 256 * 1024;
/// The longest path template kept.
const PATH_MAX_BYTES: usize = 1024;
/// How many thread buffers the exit flush can find.
const REGISTRY_SLOTS: usize = 1024;

/// One thread's buffer, at the start of its own mapping. Buffers are never unmapped: a thread's
/// exit flushes its buffer and gives it up (`owned` false) for the next new thread.
#[repr(C)]
struct ThreadBuffer {
    /// Taken by the owner around each event and by the exit flush.
    busy: AtomicBool,
    /// Whether a live thread uses the buffer.
    owned: AtomicBool,
    encoder: ChunkEncoder,
    bytes: [u8; BUFFER_BYTES],
}

const BUFFER_BYTES: usize = BUFFER_MAPPING_BYTES - 128;
const _: () = assert!(core::mem::size_of::<ThreadBuffer>() <= BUFFER_MAPPING_BYTES);
const _: () =
    assert!(BUFFER_BYTES > heapkit_trace::CHUNK_HEADER_MAX_BYTES + heapkit_trace::EVENT_MAX_BYTES);

/// Every live thread's buffer, for the flush at `exit`.
static REGISTRY: [AtomicPtr<ThreadBuffer>; REGISTRY_SLOTS] =
    [const { AtomicPtr::new(ptr::null_mut()) }; REGISTRY_SLOTS];

/// Object ids a thread takes from [`NEXT_ID`] at once: one atomic add per this many objects,
/// and ids that stay close together within a thread (small deltas in the trace).
const ID_BLOCK: u64 = 256;

/// What the recorder keeps per thread: one TLS block, all zeros at a thread's start (so it can
/// live in `.tbss`, see [`thread_state`]).
#[repr(C)]
struct ThreadState {
    /// Set while this thread records, so that calls made meanwhile are not recorded.
    recording: Cell<bool>,
    /// This thread's buffer (null until its first event, and again after its exit flush).
    buffer: Cell<*mut ThreadBuffer>,
    /// This thread's number plus one (0: none yet).
    number_plus_one: Cell<u64>,
    /// The next id of this thread's block of ids, and the end of the block.
    next_id: Cell<u64>,
    id_end: Cell<u64>,
    /// This thread's last clock reading, and how many more events may carry it (see [`stamp`]).
    stamp_ticks: Cell<u64>,
    stamp_reuses_left: Cell<u64>,
}

const THREAD_STATE_BYTES: usize = core::mem::size_of::<ThreadState>();
const _: () = assert!(core::mem::align_of::<ThreadState>() <= 8);

heapkit_core::cfg_initial_exec_tls! {
    if {
        /// This thread's [`ThreadState`] in the *initial-exec* TLS model (heapkit-core's
        /// `initial_exec_block!`, as heapkit-tcache's slot.rs does for its slot word, and for the
        /// same reason): the general-dynamic model of a shared library calls `__tls_get_addr` on
        /// every event. The block is in `.tbss` (every field starts as zero bits: false, null,
        /// 0) and found as the thread pointer plus its `@GOTTPOFF` offset — three instructions.
        /// The cost: the library takes `THREAD_STATE_BYTES` of glibc's surplus static TLS when
        /// loaded with `dlopen`.
        mod thread_state {
            use super::{ThreadState, THREAD_STATE_BYTES};

            heapkit_core::initial_exec_block! {
                symbol: "heapkit_malloc_trace_state",
                bytes: THREAD_STATE_BYTES,
                address: state_address,
            }

            /// Runs `body` with this thread's state.
            #[inline(always)]
            pub(super) fn with<T>(body: impl FnOnce(&ThreadState) -> T) -> T {
                body(get())
            }

            /// This thread's state. `'static` stands for "as long as this thread": the reference
            /// is not `Send` (the state's `Cell`s are not `Sync`), so it cannot outlive the
            /// thread.
            #[inline(always)]
            pub(super) fn get() -> &'static ThreadState {
                // SAFETY: this thread's own block, 8-aligned, `THREAD_STATE_BYTES` long and
                // zeroed at the thread's start — a valid `ThreadState` (Cells of plain data); it
                // lives as long as the thread, and only this thread can use the reference (it is
                // not `Send`).
                unsafe { &*(state_address() as *const ThreadState) }
            }
        }
    } else {
        /// This thread's [`ThreadState`], through `std::thread_local!` (a `const`, all-zero
        /// initialiser and no destructor). In a shared library that is a `__tls_get_addr` call
        /// per event, which is why x86-64 glibc uses an initial-exec block instead.
        mod thread_state {
            use super::ThreadState;
            use core::cell::Cell;
            use core::ptr;

            std::thread_local! {
                static STATE: ThreadState = const {
                    ThreadState {
                        recording: Cell::new(false),
                        buffer: Cell::new(ptr::null_mut()),
                        number_plus_one: Cell::new(0),
                        next_id: Cell::new(0),
                        id_end: Cell::new(0),
                        stamp_ticks: Cell::new(0),
                        stamp_reuses_left: Cell::new(0),
                    }
                };
            }

            /// Runs `body` with this thread's state.
            #[inline(always)]
            pub(super) fn with<T>(body: impl FnOnce(&ThreadState) -> T) -> T {
                STATE.with(body)
            }

            /// This thread's state. `'static` stands for "as long as this thread": the reference
            /// is not `Send` (the state's `Cell`s are not `Sync`), so it cannot outlive the
            /// thread.
            #[inline(always)]
            pub(super) fn get() -> &'static ThreadState {
                // SAFETY: this thread's own state, alive (the `const` initialiser, no
                // destructor) as long as the thread, which is as long as the `!Send` reference
                // can be used.
                STATE.with(|state| unsafe { &*(state as *const ThreadState) })
            }
        }
    }
}

/// Events of a single-threaded process that share one clock reading: the reading, then
/// `STAMP_EVERY - 1` more.
const STAMP_EVERY: u64 = 4;

/// The timestamp of this thread's event. Reading the TSC costs ~20 ns on this project's VMs,
/// a tenth of a traced python3's time at one reading per event, so a single-threaded process
/// reads it on every [`STAMP_EVERY`]th event and the events between carry the last reading
/// (`dt` 0: an event's time can be early by the time its thread took for up to
/// `STAMP_EVERY - 1` events; docs/trace-format.md). With other threads every event reads the
/// clock, so that an object's creation is never stamped after its free on another thread.
#[inline(always)]
fn stamp(state: &ThreadState) -> u64 {
    let reuses_left = state.stamp_reuses_left.get();
    if reuses_left != 0 && heapkit_core::process_is_single_threaded() {
        state.stamp_reuses_left.set(reuses_left - 1);
        return state.stamp_ticks.get();
    }
    let now = clock::ticks();
    state.stamp_ticks.set(now);
    state.stamp_reuses_left.set(STAMP_EVERY - 1);
    now
}

/// The next object id of this thread.
fn next_id(state: &ThreadState) -> u64 {
    let mut id = state.next_id.get();
    if id == state.id_end.get() {
        id = NEXT_ID.fetch_add(ID_BLOCK, Ordering::Relaxed);
        state.id_end.set(id + ID_BLOCK);
    }
    state.next_id.set(id + 1);
    id
}

/// A fixed buffer holding the `HEAPKIT_TRACE` value, written once by the constructor (before
/// any other thread can read it) and by a fork child on its only thread.
struct PathTemplate(core::cell::UnsafeCell<[u8; PATH_MAX_BYTES]>);

// SAFETY: written only by the library constructor and by a fork child's handler, each on the
// process's only thread of the moment; read afterwards.
unsafe impl Sync for PathTemplate {}

impl PathTemplate {
    const fn new() -> PathTemplate {
        PathTemplate(core::cell::UnsafeCell::new([0; PATH_MAX_BYTES]))
    }
}

/// This thread's errno.
fn errno() -> i32 {
    // SAFETY: this thread's errno slot is always valid.
    unsafe { *libc::__errno_location() }
}

/// `CLOCK_MONOTONIC` in nanoseconds (the vDSO: no system call, no allocation).
pub(crate) fn now_ns() -> u64 {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `time` is a valid timespec to write.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut time) };
    (time.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(time.tv_nsec as u64)
}

/// Writes all of `bytes` to the trace file (retrying short writes and `EINTR`); false when the
/// file refuses.
fn write_all(mut bytes: &[u8]) -> bool {
    let fd = FILE.load(Ordering::Relaxed);
    while !bytes.is_empty() {
        // SAFETY: `bytes` is valid for reads of its length.
        let written = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if written < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return false;
        }
        bytes = &bytes[written as usize..];
    }
    true
}

/// Writes `number` in decimal into `out` at `at`; the new end, or `None` when out of room.
fn put_decimal(out: &mut [u8], mut at: usize, number: u32) -> Option<usize> {
    let mut digits = [0u8; 10];
    let mut len = 0;
    let mut rest = number;
    loop {
        digits[len] = b'0' + (rest % 10) as u8;
        len += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for &digit in digits[..len].iter().rev() {
        *out.get_mut(at)? = digit;
        at += 1;
    }
    Some(at)
}

/// The path for process `pid`: the template with `%p` replaced by the pid (and `.<pid>`
/// appended when `append_pid` and the template has no `%p`), NUL-terminated in `out`.
fn expand_path(template: &[u8], pid: u32, append_pid: bool, out: &mut [u8]) -> Option<()> {
    let mut at = 0;
    let mut saw_pid = false;
    let mut index = 0;
    while index < template.len() {
        if template[index] == b'%' && template.get(index + 1) == Some(&b'p') {
            at = put_decimal(out, at, pid)?;
            saw_pid = true;
            index += 2;
            continue;
        }
        *out.get_mut(at)? = template[index];
        at += 1;
        index += 1;
    }
    if append_pid && !saw_pid {
        *out.get_mut(at)? = b'.';
        at = put_decimal(out, at + 1, pid)?;
    }
    *out.get_mut(at)? = 0;
    Some(())
}

/// Opens the trace file for this process and writes its header; false on failure.
fn open_file(parent_pid: u32) -> bool {
    // SAFETY: `getpid` has no preconditions.
    let pid = unsafe { libc::getpid() } as u32;
    PID.store(pid, Ordering::Relaxed);
    // SAFETY: the template is only written on the process's only thread (see PathTemplate).
    let template = unsafe { &*PATH.0.get() };
    let template_len = template.iter().position(|&b| b == 0).unwrap_or(0);
    let mut path = [0u8; PATH_MAX_BYTES + 16];
    if expand_path(&template[..template_len], pid, parent_pid != 0, &mut path).is_none() {
        return false;
    }
    // SAFETY: `path` is NUL-terminated.
    let fd = unsafe {
        libc::open(
            path.as_ptr().cast(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND | libc::O_CLOEXEC,
            0o644,
        )
    };
    if fd < 0 {
        return false;
    }
    FILE.store(fd, Ordering::Relaxed);
    let (tick_num_ns, tick_den) = clock::calibration();
    let header = Header {
        clock: clock::KIND,
        tick_num_ns,
        tick_den,
        start_ticks: clock::ticks(),
        pid,
        parent_pid,
    };
    write_all(&header.encode())
}

/// The library constructor's part: starts recording when `HEAPKIT_TRACE` names a file.
pub fn start(template: &[u8]) {
    if template.is_empty() || template.len() >= PATH_MAX_BYTES {
        crate::init::report_ignored(
            c"HEAPKIT_TRACE",
            template,
            "is empty or longer than 1023 bytes",
            "no trace",
        );
        return;
    }
    // SAFETY: the constructor runs before the program can start threads: no reader yet.
    unsafe { (&mut *PATH.0.get())[..template.len()].copy_from_slice(template) };
    clock::calibrate();
    if !trace_ids::map() || !open_file(0) {
        crate::init::report_ignored(
            c"HEAPKIT_TRACE",
            template,
            "cannot open the file or map the table",
            "no trace",
        );
        return;
    }
    if !crate::divert::start() {
        crate::init::report_ignored(
            c"HEAPKIT_TRACE",
            template,
            "the process already runs threads when the library starts",
            "no trace",
        );
        return;
    }
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: `key` is writable; the destructor is a plain function.
    if unsafe { libc::pthread_key_create(&mut key, Some(flush_at_thread_exit)) } == 0 {
        EXIT_KEY.store(key, Ordering::Relaxed);
    }
    // SAFETY: registering a plain function; it runs once at exit.
    unsafe { libc::atexit(flush_at_exit) };
    TRACING.store(true, Ordering::Release);
}

/// This thread's number, assigned on its first event.
fn thread_number(state: &ThreadState) -> u64 {
    match state.number_plus_one.get() {
        0 => {
            let number = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
            state.number_plus_one.set(number + 1);
            number
        }
        plus_one => plus_one - 1,
    }
}

/// Takes `busy`: uncontended but for the flush at `exit`.
fn lock(buffer: &ThreadBuffer) {
    while buffer.busy.swap(true, Ordering::Acquire) {
        core::hint::spin_loop();
    }
}

/// Takes `busy` for the owner's event, unless the process has one thread: then no flush at
/// `exit` can run on another thread while this one records (it would first have to start that
/// thread), and the atomic swap is saved. Returns whether it took `busy`.
#[inline]
fn lock_for_event(buffer: &ThreadBuffer) -> bool {
    if heapkit_core::process_is_single_threaded() {
        return false;
    }
    lock(buffer);
    true
}

/// A buffer given up by an exited thread, now owned by this one (null when there is none).
fn reuse_buffer() -> *mut ThreadBuffer {
    for slot in &REGISTRY {
        let buffer = slot.load(Ordering::Acquire);
        if buffer.is_null() {
            return ptr::null_mut();
        }
        // SAFETY: registered buffers stay mapped for the life of the process.
        let buffer_ref = unsafe { &*buffer };
        if buffer_ref
            .owned
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return buffer;
        }
    }
    ptr::null_mut()
}

/// Maps and registers a new buffer, owned by this thread (null when the kernel refuses).
fn map_buffer() -> *mut ThreadBuffer {
    // SAFETY: an anonymous private mapping with no address hint has no preconditions.
    let mapping = unsafe {
        libc::mmap(
            ptr::null_mut(),
            BUFFER_MAPPING_BYTES,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if mapping == libc::MAP_FAILED {
        return ptr::null_mut();
    }
    let buffer = mapping.cast::<ThreadBuffer>();
    // SAFETY: the mapping is fresh, zeroed, large enough (asserted) and page aligned; the
    // fields written are plain data; `bytes` stays zeroed.
    unsafe {
        ptr::addr_of_mut!((*buffer).busy).write(AtomicBool::new(false));
        ptr::addr_of_mut!((*buffer).owned).write(AtomicBool::new(true));
        ptr::addr_of_mut!((*buffer).encoder).write(ChunkEncoder::new(0));
    }
    // A buffer the registry has no room for is still flushed when full and at thread exit,
    // only not by the flush at `exit`.
    let _ = REGISTRY.iter().any(|slot| {
        slot.compare_exchange(ptr::null_mut(), buffer, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    });
    buffer
}

/// A buffer for this thread, reused or new, with an encoder for its thread number and the
/// exit destructor armed (null when the kernel refuses memory).
fn new_buffer(state: &ThreadState) -> *mut ThreadBuffer {
    keeping_errno(|| new_buffer_now(state))
}

/// [`new_buffer`]'s work.
fn new_buffer_now(state: &ThreadState) -> *mut ThreadBuffer {
    let mut buffer = reuse_buffer();
    if buffer.is_null() {
        buffer = map_buffer();
        if buffer.is_null() {
            return buffer;
        }
    }
    // SAFETY: a buffer this thread now owns; the exit flush may look at it, under `busy`.
    let buffer_ref = unsafe { &mut *buffer };
    lock(buffer_ref);
    buffer_ref.encoder = ChunkEncoder::new(thread_number(state));
    buffer_ref.busy.store(false, Ordering::Release);
    let key = EXIT_KEY.load(Ordering::Relaxed);
    if key != u32::MAX {
        // SAFETY: a key this library created; the value is this thread's buffer.
        unsafe { libc::pthread_setspecific(key, buffer.cast()) };
    }
    buffer
}

/// Runs `body`, then puts errno back as it was: recording must not change what the program
/// sees, and `write` and `mmap` may set errno. Only around the recorder's system calls (a
/// buffer's flush, a new buffer), not per event: two `__errno_location` calls each.
fn keeping_errno<T>(body: impl FnOnce() -> T) -> T {
    let saved_errno = errno();
    let result = body();
    // SAFETY: this thread's errno slot is always valid.
    unsafe { *libc::__errno_location() = saved_errno };
    result
}

/// Writes the buffer's chunk to the file, errno kept. The caller holds `busy`.
fn flush(buffer: &mut ThreadBuffer) {
    keeping_errno(|| flush_chunk(buffer));
}

/// [`flush`]'s work.
fn flush_chunk(buffer: &mut ThreadBuffer) {
    if let Some(chunk) = buffer.encoder.finish(&mut buffer.bytes) {
        if !chunk.is_empty() && !write_all(chunk) {
            LOST.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Encodes `event` into this thread's buffer, flushing it first when full. Inlined into each
/// hook, so that the encoder's work is specialised to the hook's event kind.
#[inline(always)]
fn record(state: &ThreadState, event: Event) {
    let mut buffer = state.buffer.get();
    if buffer.is_null() {
        buffer = new_buffer(state);
        if buffer.is_null() {
            LOST.fetch_add(1, Ordering::Relaxed);
            return;
        }
        state.buffer.set(buffer);
    }
    // SAFETY: this thread's own buffer, mapped until its exit flush (which also clears
    // `BUFFER`); other threads touch it only under `busy`, taken below.
    let buffer = unsafe { &mut *buffer };
    let locked = lock_for_event(buffer);
    if buffer.encoder.push(&mut buffer.bytes, &event).is_err() {
        flush(buffer);
        let _ = buffer.encoder.push(&mut buffer.bytes, &event);
    }
    if locked {
        buffer.busy.store(false, Ordering::Release);
    }
}

/// Runs `body` unless this thread is already recording (a call made by the recorder itself).
#[inline]
fn guarded(body: impl FnOnce(&ThreadState)) {
    thread_state::with(|state| {
        if state.recording.replace(true) {
            return;
        }
        body(state);
        state.recording.set(false);
    });
}

/// This thread's state with its recording flag taken, or `None` when the thread is already
/// recording (a call made by the recorder itself). Not a closure as [`guarded`]: a closure is
/// one function for every caller, which would keep the event kind a runtime value in the hooks
/// (see [`created`]). The caller calls [`leave`] after its work.
#[inline(always)]
fn enter() -> Option<&'static ThreadState> {
    let state = thread_state::get();
    if state.recording.replace(true) {
        return None;
    }
    Some(state)
}

/// Gives back the recording flag [`enter`] took.
#[inline(always)]
fn leave(state: &ThreadState) {
    state.recording.set(false);
}

/// After a successful allocation of `kind`: gives `block` an id and records the event. Inlined
/// into the divert's hooks, each specialised to its kind (a constant there, so the encoder's
/// branches on the kind fold away).
#[inline(always)]
pub fn created(kind: Kind, block: *mut u8, size: usize, align: usize) {
    if block.is_null() {
        return;
    }
    let Some(state) = enter() else {
        return;
    };
    let id = next_id(state);
    if trace_ids::insert(block as usize, id) {
        let event = Event::new(kind, id, size as u64, stamp(state));
        record(state, event.aligned(align.max(1).trailing_zeros() as u8));
    } else {
        LOST.fetch_add(1, Ordering::Relaxed);
    }
    leave(state);
}

/// Before freeing `block` with `kind`: records the event (blocks the table does not know —
/// allocated before tracing started — are not recorded). Inlined as [`created`] is.
#[inline(always)]
pub fn freed(kind: Kind, block: *mut u8) {
    if block.is_null() {
        return;
    }
    let Some(state) = enter() else {
        return;
    };
    if let Some(id) = trace_ids::remove(block as usize) {
        record(state, Event::new(kind, id, 0, stamp(state)));
    }
    leave(state);
}

/// Before `realloc(block, ..)`: takes the block's id out of the table (so that another thread
/// that gets the address once it is freed can insert it); 0 when the block is not traced.
#[cold]
#[inline(never)]
pub fn realloc_begin(block: *mut u8) -> u64 {
    let mut id = 0;
    guarded(|_| id = trace_ids::remove(block as usize).unwrap_or(0));
    id
}

/// After `realloc(old, size)` returned `new`: on failure the old block keeps its id; on success
/// the object (or, for a block allocated before tracing, a new object) moves to `new`.
#[cold]
#[inline(never)]
pub fn realloc_end(id: u64, old: *mut u8, new: *mut u8, size: usize) {
    if new.is_null() {
        if id != 0 {
            guarded(|_| {
                trace_ids::insert(old as usize, id);
            });
        }
        return;
    }
    if id == 0 {
        created(Kind::Malloc, new, size, heapkit_core::MAX_ALIGN_BYTES);
        return;
    }
    guarded(|state| {
        if !trace_ids::insert(new as usize, id) {
            LOST.fetch_add(1, Ordering::Relaxed);
        }
        record(
            state,
            Event::new(Kind::Realloc, id, size as u64, stamp(state)),
        );
    });
}

/// Flushes this thread's buffer and gives it up: the `pthread_key_create` destructor.
extern "C" fn flush_at_thread_exit(buffer: *mut libc::c_void) {
    let buffer = buffer.cast::<ThreadBuffer>();
    if buffer.is_null() {
        return;
    }
    guarded(|state| {
        // SAFETY: the value this thread set with `pthread_setspecific`: its buffer, mapped for
        // the life of the process.
        let buffer_ref = unsafe { &mut *buffer };
        lock(buffer_ref);
        flush(buffer_ref);
        buffer_ref.busy.store(false, Ordering::Release);
        // A call after this point (a later destructor's `free`) takes a buffer again.
        state.buffer.set(ptr::null_mut());
        buffer_ref.owned.store(false, Ordering::Release);
    });
}

/// Flushes every registered buffer: the `atexit` handler.
extern "C" fn flush_at_exit() {
    guarded(|_| {
        for slot in &REGISTRY {
            let buffer = slot.load(Ordering::Acquire);
            if buffer.is_null() {
                continue;
            }
            // SAFETY: registered buffers stay mapped for the life of the process; `busy`
            // serialises with the owner.
            let buffer = unsafe { &mut *buffer };
            lock(buffer);
            flush(buffer);
            buffer.busy.store(false, Ordering::Release);
        }
        let lost = LOST.load(Ordering::Relaxed);
        if lost != 0 {
            let mut text = heapkit_core::StackMessage::new();
            let _ = core::fmt::Write::write_fmt(
                &mut text,
                format_args!("heapkit: trace: {lost} objects or chunks were not recorded\n"),
            );
            text.write_to_stderr();
        }
    });
}

/// Before `fork`: writes this thread's buffered events, so that the child starts empty.
pub fn before_fork() {
    if !tracing() {
        return;
    }
    guarded(|state| {
        let buffer = state.buffer.get();
        if !buffer.is_null() {
            // SAFETY: this thread's own buffer; its `busy` is free (this thread is not
            // recording).
            let buffer = unsafe { &mut *buffer };
            flush(buffer);
        }
    });
}

/// In the child of `fork`: the parent's other threads are gone (drop their buffered events and
/// free their buffers) and the child writes its own file.
pub fn after_fork_in_child() {
    if !tracing() {
        return;
    }
    let own = thread_state::with(|state| state.buffer.get());
    for slot in &REGISTRY {
        let buffer = slot.load(Ordering::Relaxed);
        if buffer.is_null() || buffer == own {
            continue;
        }
        // SAFETY: registered buffers stay mapped; the child's only thread is this one, so no
        // one else can hold the buffer (a parent thread that held `busy` at the fork is gone).
        let buffer = unsafe { &mut *buffer };
        buffer.encoder = ChunkEncoder::new(0);
        buffer.busy.store(false, Ordering::Relaxed);
        buffer.owned.store(false, Ordering::Relaxed);
    }
    // SAFETY: the parent's descriptor, ours to close in the child.
    unsafe { libc::close(FILE.load(Ordering::Relaxed)) };
    let parent = PID.load(Ordering::Relaxed);
    if !open_file(parent) {
        TRACING.store(false, Ordering::Relaxed);
    }
}
