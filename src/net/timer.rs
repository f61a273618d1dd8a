//! [`WakeTimer`]: a one-shot timer that wakes its task exactly once, at its deadline.
//!
//! tokio's timers live in a hierarchical wheel: a deadline more than 64 ms away is first
//! woken for at the boundary of its coarser slot, then again at the deadline; and a timer
//! moved later (`Sleep::reset`) leaves the driver asleep until the old deadline, to wake
//! for nothing. An idle subscriber's health check (a long timer moved after every `PONG`)
//! paid both: about five wake-ups per interval where two are needed (issue 18). A Linux
//! `timerfd` is re-armed in the kernel and readable only at its deadline: one wake-up.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

/// A one-shot timer on a `timerfd` (see the module docs); unarmed when made.
pub(crate) struct WakeTimer {
    fd: AsyncFd<OwnedFd>,
}

impl WakeTimer {
    /// A new, unarmed timer (needs a tokio runtime with I/O enabled).
    pub(crate) fn new() -> io::Result<WakeTimer> {
        // SAFETY: plain syscall; the descriptor is owned below.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: an `OwnedFd` keeps its descriptor open and the same until it is dropped
        // with the `AsyncFd`.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .map_err(io::Error::from)?;
        Ok(WakeTimer { fd })
    }

    /// Arm it for `at` (replacing any deadline it had; a past one fires at once).
    pub(crate) fn set(&self, at: Instant) -> io::Result<()> {
        // A zero value would disarm it: at least 1 ns.
        let after = at
            .saturating_duration_since(Instant::now())
            .max(Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs() as libc::time_t,
                tv_nsec: after.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: our descriptor; `spec` lives across the call; no old value wanted.
        let rc =
            unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Until the deadline set last has passed (cancel-safe: dropping it before changes
    /// nothing; a deadline that passed meanwhile is seen by the next call).
    pub(crate) async fn wait(&self) -> io::Result<()> {
        loop {
            let mut ready = self.fd.readable().await?;
            let read = ready.try_io(|fd| {
                let mut expirations = [0u8; 8];
                // SAFETY: reading 8 bytes into an 8-byte buffer from our descriptor.
                let n = unsafe { libc::read(fd.as_raw_fd(), expirations.as_mut_ptr().cast(), 8) };
                if n < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
            match read {
                Ok(r) => return r,
                // Not expired after all (re-armed meanwhile): readiness cleared, wait again.
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    #[cfg_attr(miri, ignore = "a timerfd: Miri cannot create one")]
    async fn fires_at_its_deadline_and_can_be_moved() {
        let t = WakeTimer::new().unwrap();
        let start = Instant::now();
        t.set(start + Duration::from_millis(30)).unwrap();
        t.wait().await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(30));
        // Moved later before it fired: it fires at the new deadline only.
        let start = Instant::now();
        t.set(start + Duration::from_millis(10)).unwrap();
        t.set(start + Duration::from_millis(60)).unwrap();
        t.wait().await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(60));
        // A past deadline fires at once.
        t.set(Instant::now() - Duration::from_millis(5)).unwrap();
        tokio::time::timeout(Duration::from_secs(1), t.wait())
            .await
            .unwrap()
            .unwrap();
    }
}
