//! A per-request arena: each request is parsed into a small tree whose nodes, strings and
//! scratch vectors all live in one arena, which is reset (not freed) between requests.
//!
//! `cargo run -p heapkit-bump --example request_arena`
//!
//! The pattern: one `Arena` per worker, `reset()` after each request. After the first few
//! requests the arena keeps the chunks a typical request needs and never asks the OS for memory
//! again; nothing is freed object by object.

use allocator_api2::vec::Vec as ArenaVec;
use heapkit_bump::Arena;

/// A parsed request: `VERB /path?key=value&key=value`.
#[derive(Debug)]
struct Request<'a> {
    verb: &'a str,
    path: &'a [&'a str],
    params: &'a [(&'a str, &'a str)],
}

/// Parses one request line; every allocation goes to `arena`.
fn parse<'a>(arena: &'a Arena, line: &str) -> Option<Request<'a>> {
    let (verb, target) = line.split_once(' ')?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    // Growing Vecs in the arena: the most recent allocation grows in place.
    let mut segments = ArenaVec::new_in(arena);
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        segments.push(&*arena.alloc_str(segment));
    }
    let mut params = ArenaVec::new_in(arena);
    for pair in query.split('&').filter(|s| !s.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        params.push((&*arena.alloc_str(key), &*arena.alloc_str(value)));
    }
    Some(Request {
        verb: arena.alloc_str(verb),
        // The Vecs are copied into plain arena slices (their buffers stay until the reset).
        path: arena.alloc_slice_copy(&segments),
        params: arena.alloc_slice_copy(&params),
    })
}

/// "Handles" a request: a response string built in the same arena.
fn handle<'a>(arena: &'a Arena, request: &Request<'_>) -> &'a str {
    let mut body = allocator_api2::vec::Vec::new_in(arena);
    body.extend_from_slice(request.verb.as_bytes());
    for segment in request.path {
        body.push(b' ');
        body.extend_from_slice(segment.as_bytes());
    }
    for (key, value) in request.params {
        body.extend_from_slice(b" ");
        body.extend_from_slice(key.as_bytes());
        body.push(b'=');
        body.extend_from_slice(value.as_bytes());
    }
    let bytes = arena.alloc_slice_copy(&body);
    core::str::from_utf8(bytes).unwrap_or("<bad utf-8>")
}

fn main() {
    let lines = [
        "GET /users/42/profile?fields=name&lang=en",
        "POST /orders?id=7",
        "GET /static/css/site.css",
        "DELETE /sessions/abc123",
    ];
    let mut arena = Arena::new();
    for round in 0..1000 {
        for line in &lines {
            let Some(request) = parse(&arena, line) else {
                eprintln!("bad request: {line}");
                continue;
            };
            let response = handle(&arena, &request);
            if round == 0 {
                println!("{line:45} -> {response}  ({} B used)", arena.used_bytes());
            }
        }
        // Everything from this round goes at once; its chunks stay for the next round.
        arena.reset();
    }
    println!(
        "after 4000 requests: {} chunk(s), {} B held, {} B used",
        arena.chunk_count(),
        arena.allocated_bytes(),
        arena.used_bytes()
    );
}
