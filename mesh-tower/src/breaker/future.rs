//! The breaker layer's response future.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;
use pin_project_lite::pin_project;

use super::Permit;

pin_project! {
    /// The inner service's response, holding the request slot until it resolves; or the local
    /// 503 answered on overflow.
    #[derive(Debug)]
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project! {
    #[project = StateProj]
    #[derive(Debug)]
    enum State<F, B> {
        Called {
            #[pin]
            fut: F,
            permit: Option<Permit>,
        },
        Overflow {
            res: Option<Response<B>>,
        },
    }
}

impl<F, B> ResponseFuture<F, B> {
    pub(super) fn called(fut: F, permit: Permit) -> Self {
        Self {
            state: State::Called {
                fut,
                permit: Some(permit),
            },
        }
    }

    pub(super) fn overflow(res: Response<B>) -> Self {
        Self {
            state: State::Overflow { res: Some(res) },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Called { fut, permit } => {
                let out = std::task::ready!(fut.poll(cx));
                // The request ends with its response head, as for Envoy's `rq_active`.
                permit.take();
                Poll::Ready(out)
            }
            StateProj::Overflow { res } => {
                Poll::Ready(Ok(res.take().expect("polled after completion")))
            }
        }
    }
}
