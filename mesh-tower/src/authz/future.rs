//! The authorization layer's response future.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::Response;
use http_body_util::{Either, Full};
use pin_project_lite::pin_project;

use super::AuthzBody;

pin_project! {
    /// The service's response for an allowed request; the refusal for a denied one.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    #[derive(Debug)]
    enum State<F> {
        Allowed {
            #[pin]
            fut: F,
        },
        Denied {
            res: Option<Response<Full<Bytes>>>,
        },
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn allowed(fut: F) -> Self {
        Self {
            state: State::Allowed { fut },
        }
    }

    pub(super) fn denied(res: Response<Full<Bytes>>) -> Self {
        Self {
            state: State::Denied { res: Some(res) },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<AuthzBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Allowed { fut } => {
                let res = ready!(fut.poll(cx))?;
                Poll::Ready(Ok(res.map(Either::Left)))
            }
            StateProj::Denied { res } => {
                let res = res.take().expect("ResponseFuture polled after completion");
                Poll::Ready(Ok(res.map(Either::Right)))
            }
        }
    }
}
