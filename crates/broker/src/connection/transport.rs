//! The byte stream under a connection: plain TCP or TLS over TCP.
//!
//! The connection task waits for readability without holding a read buffer, then reads
//! without waiting (see the parent module). TCP offers both directly. TLS cannot say
//! "a record is ready" without decrypting it, so its readiness is the socket's, plus
//! "the last read may have left plaintext inside rustls"; a read then polls the TLS
//! stream once and reports `WouldBlock` if it is not ready. Everything else (writes,
//! flush, close_notify on shutdown) is plain `AsyncWrite`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// What a connection task needs from its byte stream.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Whether the stream is encrypted (told to the authenticator).
    const TLS: bool = false;

    /// Ready when a [`Transport::try_read_buf`] may make progress. Registers the task's
    /// waker without allocating or storing a future, so an idle connection stays small.
    fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Reads what is available into `buf` without waiting: `Ok(0)` at end of stream,
    /// `WouldBlock` when nothing is (spurious readiness is allowed).
    fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize>;

    /// The client's address, for logs.
    fn peer_addr(&self) -> io::Result<SocketAddr>;

    /// The client certificate the TLS handshake verified (DER, the leaf), if any.
    fn client_certificate(&self) -> Option<&[u8]> {
        None
    }

    /// The name of the registered device CA that signed that certificate (its file
    /// stem under `ca/trusted/`), if known.
    fn client_certificate_ca(&self) -> Option<&str> {
        None
    }
}

impl Transport for TcpStream {
    fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        TcpStream::poll_read_ready(self, cx)
    }

    fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        TcpStream::try_read_buf(self, buf)
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        TcpStream::peer_addr(self)
    }
}

/// A TLS connection after its handshake.
pub(crate) struct Tls {
    /// Boxed: rustls' connection state is about a kilobyte, and the task future holds
    /// the transport by value before the connection state is boxed.
    stream: Box<TlsStream<TcpStream>>,
    /// The last read returned data, so rustls may hold more plaintext than fitted (or
    /// more records already taken from the socket); check before waiting on the socket.
    maybe_buffered: bool,
    /// The registered CA that signed the client certificate: enrollment groups by CA
    /// match on it (told to the authenticator). Boxed (a thin pointer) so that TLS
    /// tasks without a certificate stay small.
    client_ca: Option<Box<Arc<str>>>,
}

impl Tls {
    /// Wraps a stream whose handshake completed. Data may already sit in rustls (a
    /// client's CONNECT often arrives with its last handshake flight).
    pub(crate) fn new(stream: TlsStream<TcpStream>, client_ca: Option<Arc<str>>) -> Tls {
        Tls {
            stream: Box::new(stream),
            maybe_buffered: true,
            client_ca: client_ca.map(Box::new),
        }
    }
}

impl Transport for Tls {
    const TLS: bool = true;

    fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.maybe_buffered {
            return Poll::Ready(Ok(()));
        }
        self.stream.get_ref().0.poll_read_ready(cx)
    }

    fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        // One poll with a no-op waker: a pending read leaves the socket's readiness
        // cleared, and `poll_read_ready` then registers the task's real waker.
        let mut cx = Context::from_waker(Waker::noop());
        let read = pin!(self.stream.read_buf(buf));
        match read.poll(&mut cx) {
            Poll::Ready(Ok(n)) => {
                self.maybe_buffered = n > 0;
                Ok(n)
            }
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => {
                self.maybe_buffered = false;
                Err(io::ErrorKind::WouldBlock.into())
            }
        }
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stream.get_ref().0.peer_addr()
    }

    fn client_certificate(&self) -> Option<&[u8]> {
        // Only ever set by a successful verification: the verifier refuses the
        // handshake otherwise.
        self.stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(<[_]>::first)
            .map(AsRef::as_ref)
    }

    fn client_certificate_ca(&self) -> Option<&str> {
        self.client_ca.as_deref().map(|name| &**name)
    }
}

impl AsyncRead for Tls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.stream).poll_shutdown(cx)
    }
}
