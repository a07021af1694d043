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
    if let Some((h, w)) = super::terminal::size() {
        let _ = api.post(&format!("/containers/{}/resize?h={h}&w={w}", encode(id)));
    }
}

/// Starts the thread that resizes (`resize`) and proxies (`proxy`) for
/// container `id`.
pub fn follow(socket: std::path::PathBuf, id: String, resize: bool, proxy: bool) {
    let mut set = SigSet::empty();
    if resize {
        set.add(Signal::SIGWINCH);
    }
    if proxy {
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
            if sig == Signal::SIGWINCH {
                self::resize(&api, &id);
            } else {
                let _ = api.post(&format!("/containers/{}/kill?signal={}", encode(&id), sig.as_str()));
            }
        }
    });
    if spawned.is_err() {
        // Nobody would take them: let them act on us again.
        let _ = set.thread_unblock();
    }
}
