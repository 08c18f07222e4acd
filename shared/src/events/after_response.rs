//! Work a function does once its response is on its way: publishing the events its commit wrote.
//!
//! The Lambda runtime posts a response to the Runtime API and only then asks for the next event;
//! Lambda freezes the environment once it has asked. [`AfterResponseLayer`] sits outside the
//! runtime's own services, so it runs the work handed to [`later`] after the response is posted
//! and before the next event is asked for: the caller has its answer without waiting for the
//! broker, and the environment is never frozen with a publish half done. Outside such a scope
//! (tests, tools, the benchmark calling handlers itself) [`later`] runs the work at once, so
//! behaviour does not depend on who calls.

use std::cell::RefCell;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use lambda_http::lambda_runtime::LambdaInvocation;
use lambda_http::tower::{Layer, Service};

type Work = Pin<Box<dyn Future<Output = ()> + Send>>;

tokio::task_local! {
    static LATER: RefCell<Vec<Work>>;
}

/// Runs `work` after the current response is posted when inside [`scope`], at once otherwise.
pub async fn later(work: impl Future<Output = ()> + Send + 'static) {
    let mut work = Some(Box::pin(work) as Work);
    // Inside a scope the work is queued and `work` is left `None`.
    let _ = LATER.try_with(|queue| queue.borrow_mut().extend(work.take()));
    if let Some(now) = work {
        now.await;
    }
}

/// Runs `respond` (which produces and posts the response), then everything it handed to
/// [`later`], in order; returns what `respond` returned.
pub async fn scope<T>(respond: impl Future<Output = T>) -> T {
    LATER
        .scope(RefCell::new(Vec::new()), async {
            let answer = respond.await;
            // Work may queue more work; a task-local borrow must not be held across an await.
            while let Some(work) = LATER.with(|queue| {
                let mut queue = queue.borrow_mut();
                (!queue.is_empty()).then(|| queue.remove(0))
            }) {
                work.await;
            }
            answer
        })
        .await
}

/// The runtime layer that gives every invocation a [`scope`] around posting its response. `'f`
/// is how long the handler's futures may borrow (from `main`'s clients).
pub struct AfterResponseLayer<'f>(PhantomData<&'f ()>);

impl Default for AfterResponseLayer<'_> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<'f, S> Layer<S> for AfterResponseLayer<'f> {
    type Service = AfterResponse<'f, S>;

    fn layer(&self, inner: S) -> Self::Service {
        AfterResponse {
            inner,
            borrows: PhantomData,
        }
    }
}

/// See [`AfterResponseLayer`].
pub struct AfterResponse<'f, S> {
    inner: S,
    borrows: PhantomData<&'f ()>,
}

impl<'f, S> Service<LambdaInvocation> for AfterResponse<'f, S>
where
    S: Service<LambdaInvocation, Response = ()>,
    S::Future: Send + 'f,
    S::Error: Send + 'f,
{
    type Response = ();
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<(), S::Error>> + Send + 'f>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, invocation: LambdaInvocation) -> Self::Future {
        // The inner future posts the response to the Runtime API before it completes.
        Box::pin(scope(self.inner.call(invocation)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn log() -> Arc<Mutex<Vec<&'static str>>> {
        Arc::new(Mutex::new(Vec::new()))
    }

    fn note(
        log: &Arc<Mutex<Vec<&'static str>>>,
        what: &'static str,
    ) -> impl Future<Output = ()> + use<> {
        let log = log.clone();
        async move { log.lock().unwrap().push(what) }
    }

    #[tokio::test]
    async fn outside_a_scope_the_work_runs_at_once() {
        let log = log();
        later(note(&log, "work")).await;
        log.lock().unwrap().push("after");
        assert_eq!(*log.lock().unwrap(), ["work", "after"]);
    }

    #[tokio::test]
    async fn inside_a_scope_the_work_runs_after_the_response_in_order() {
        let log = log();
        let answer = scope(async {
            later(note(&log, "first")).await;
            later(note(&log, "second")).await;
            log.lock().unwrap().push("response");
            42
        })
        .await;
        assert_eq!(answer, 42);
        assert_eq!(*log.lock().unwrap(), ["response", "first", "second"]);
    }

    #[tokio::test]
    async fn work_queued_by_work_runs_too() {
        let log = log();
        let inner = log.clone();
        scope(later(async move {
            later(note(&inner, "queued by work")).await;
            inner.lock().unwrap().push("work");
        }))
        .await;
        assert_eq!(*log.lock().unwrap(), ["work", "queued by work"]);
    }
}
