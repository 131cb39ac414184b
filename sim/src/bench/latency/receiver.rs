//! The webhook receiver of the latency run: HTTP/1.1 on 127.0.0.1:0 (hyper), on its own thread and
//! runtime so the producer's loop cannot delay it. It answers 200 to every request and keeps, for
//! each, the monotonic time its headers arrived (before the body is read) and the body.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// One request: when its headers arrived, and its body.
#[derive(Debug, Clone)]
pub struct Post {
    pub at: Instant,
    pub body: Bytes,
}

/// The running receiver; stops (and joins its thread) when dropped.
#[derive(Debug)]
pub struct Receiver {
    pub addr: SocketAddr,
    posts: Arc<Mutex<Vec<Post>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    pub fn start() -> anyhow::Result<Receiver> {
        let posts: Arc<Mutex<Vec<Post>>> = Arc::default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the receiver's runtime")?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .context("cannot bind the webhook receiver on 127.0.0.1")?;
        let addr = listener.local_addr()?;
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let kept = Arc::clone(&posts);
        let thread = std::thread::Builder::new()
            .name("bench-receiver".into())
            .spawn(move || {
                runtime.block_on(async move {
                    loop {
                        let stream = tokio::select! {
                            accepted = listener.accept() => match accepted {
                                Ok((stream, _)) => stream,
                                Err(_) => continue,
                            },
                            _ = &mut stop_rx => return,
                        };
                        let _ = stream.set_nodelay(true);
                        let posts = Arc::clone(&kept);
                        tokio::spawn(async move {
                            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                                // Headers are in: this is the moment the POST arrived.
                                let at = Instant::now();
                                let posts = Arc::clone(&posts);
                                async move {
                                    let body = req
                                        .into_body()
                                        .collect()
                                        .await
                                        .map(|b| b.to_bytes())
                                        .unwrap_or_default();
                                    posts.lock().expect("receiver lock").push(Post { at, body });
                                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(
                                        Bytes::from_static(b"ok"),
                                    )))
                                }
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                });
            })
            .context("cannot start the receiver's thread")?;
        Ok(Receiver {
            addr,
            posts,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The requests received from index `from` on.
    pub fn since(&self, from: usize) -> Vec<Post> {
        let posts = self.posts.lock().expect("receiver lock");
        posts.get(from..).map(<[Post]>::to_vec).unwrap_or_default()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            // Connections still open are dropped with the runtime; the accept loop ends at once.
            let deadline = Instant::now() + Duration::from_secs(5);
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}
