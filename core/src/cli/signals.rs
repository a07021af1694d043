//! Signals while we are attached to a container: SIGWINCH resizes the
//! container's terminal, and (docker's `--sig-proxy`, off for a
//! terminal, where keys carry ^C) the terminating signals are passed on
//! to the container instead of ending us.
//!
//! The signals are blocked in the calling thread, which must be the only
//! one, so that every thread started later inherits the mask; one thread
//! takes them with `sigwait`.

use nix::sys::signal::{SigSet, Signal};

use super::api::{encode, Api};

/// The signals docker's CLI passes on that we can catch and that do not
/// concern ourselves (SIGCHLD, SIGPIPE, SIGURG, SIGWINCH are not sent).
const PROXIED: [Signal; 6] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Sends the terminal's size to container `id`.
pub fn resize(api: &Api, id: &str) {
    resize_at(api, &format!("/containers/{}", encode(id)));
}

/// Sends the terminal's size to exec instance `id`.
pub fn resize_exec(api: &Api, id: &str) {
    resize_at(api, &format!("/exec/{}", encode(id)));
}

/// Sends the terminal's size to `object` (`/containers/ID`, `/exec/ID`).
fn resize_at(api: &Api, object: &str) {
    if let Some((h, w)) = super::terminal::size() {
        let _ = api.post(&format!("{object}/resize?h={h}&w={w}"));
    }
}

/// Starts the thread that resizes (`resize`) and proxies (`proxy`) for
/// container `id`.
pub fn follow(socket: std::path::PathBuf, id: String, resize: bool, proxy: bool) {
    let object = format!("/containers/{}", encode(&id));
    watch(socket, object.clone(), resize, proxy.then_some(object));
}

/// Starts the thread that resizes exec instance `id`'s terminal (docker
/// passes no signals on to an exec).
pub fn follow_exec(socket: std::path::PathBuf, id: &str) {
    watch(socket, format!("/exec/{}", encode(id)), true, None);
}

/// Takes SIGWINCH (when `resize`) to resize `object`, and the proxied
/// signals (when `kill_at` names a container) to kill it with.
fn watch(socket: std::path::PathBuf, object: String, resize: bool, kill_at: Option<String>) {
    let mut set = SigSet::empty();
    if resize {
        set.add(Signal::SIGWINCH);
    }
    if kill_at.is_some() {
        for s in PROXIED {
            set.add(s);
        }
    }
    if set.iter().next().is_none() || set.thread_block().is_err() {
        return;
    }
    let spawned = std::thread::Builder::new().name("signals".into()).spawn(move || {
        let api = Api::new(socket);
        while let Ok(sig) = set.wait() {
            match &kill_at {
                Some(c) if sig != Signal::SIGWINCH => {
                    let _ = api.post(&format!("{c}/kill?signal={}", sig.as_str()));
                }
                _ => resize_at(&api, &object),
            }
        }
    });
    if spawned.is_err() {
        // Nobody would take them: let them act on us again.
        let _ = set.thread_unblock();
    }
}
