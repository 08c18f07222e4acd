//! The last flush, when Lambda retires an environment. Lambda sends `SIGTERM` (and waits 500 ms
//! before `SIGKILL`) only to a process with an extension registered; the runtime's
//! graceful-shutdown helper registers a no-op internal extension that subscribes to no events, so
//! no invocation waits for it, and runs our flush on `SIGTERM`.
//!
//! The helper must be registered before the runtime asks for its first event, but
//! [`super::init`] is synchronous and each function's `main` runs the runtime itself. So the
//! helper gets a thread and a one-thread tokio runtime of its own, and `init` waits until it has
//! registered: a few milliseconds of the cold start, and nothing per request (the extension's
//! connection waits for an event that never comes).

use std::sync::mpsc;
use std::time::Duration;

/// Longest `init` waits for the extension to register.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(2);

/// Registers the flush on `SIGTERM` (and `SIGINT`), when running under a Lambda Runtime API.
/// Without it (a test calling `init`), or if the registration fails, it only logs why: the
/// metrics still flush after each invocation.
pub(super) fn flush_on_sigterm() {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        return;
    }
    let (registered, wait) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("graceful-shutdown".to_owned())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let Ok(runtime) = runtime else {
                return;
            };
            runtime.block_on(async move {
                // Panics if the Runtime API refuses the extension: this thread ends, and `init`
                // sees the channel close.
                lambda_runtime::spawn_graceful_shutdown_handler(super::flush_now).await;
                let _ = registered.send(());
                // Drives the helper's task: the signal listener and the extension.
                std::future::pending::<()>().await;
            });
        });
    if thread.is_err() || wait.recv_timeout(REGISTER_TIMEOUT).is_err() {
        tracing::warn!(
            "no flush at shutdown: the metrics recorded after an environment's last invocation may be lost"
        );
    }
}
