//! A WebSocket as the byte stream under an MQTT connection.
//!
//! Reading decodes frames from the transport and hands on the payload of data frames;
//! pings are answered and a close frame ends the stream (`Ok(0)`). Writing wraps each
//! write in one binary frame. Frames waiting to go out (data, pongs, the close reply)
//! sit in `out`; a write first drains it, so a slow peer pushes back as on TCP. Both
//! buffers are released when empty: an idle WebSocket costs what an idle TCP
//! connection does plus this struct.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::frame::{self, Decoder, Frame, FrameError};
use crate::connection::Transport;

/// An open WebSocket over `T`.
pub(crate) struct WebSocket<T> {
    inner: T,
    decoder: Decoder,
    /// Bytes read from `inner` and not yet decoded.
    raw: BytesMut,
    /// `raw` may hold a whole frame (bytes arrived since the last decode came up short).
    raw_fresh: bool,
    /// Data decoded but not yet handed to the reader.
    decoded: BytesMut,
    /// Encoded frames not yet written to `inner`.
    out: BytesMut,
    /// A close frame arrived (or a frame error ended the stream): reads return 0.
    closed: bool,
    /// We sent our close frame.
    close_sent: bool,
}

impl<T: Transport> WebSocket<T> {
    /// Wraps `inner` after a successful upgrade; `raw` holds bytes the client sent
    /// after its request head, and frames are limited to `max_frame` payload bytes.
    pub(crate) fn new(inner: T, raw: BytesMut, max_frame: u64) -> WebSocket<T> {
        WebSocket {
            inner,
            decoder: Decoder::new(max_frame),
            raw_fresh: !raw.is_empty(),
            raw,
            decoded: BytesMut::new(),
            out: BytesMut::new(),
            closed: false,
            close_sent: false,
        }
    }

    /// Decodes every whole frame in `raw`: data into `decoded`, control frames answered.
    fn decode_raw(&mut self) {
        while !self.closed {
            match self.decoder.decode(&mut self.raw) {
                Ok(Some(Frame::Data(data))) => {
                    if self.decoded.is_empty() {
                        self.decoded = data;
                    } else {
                        self.decoded.extend_from_slice(&data);
                    }
                }
                Ok(Some(Frame::Ping(payload))) => frame::encode_pong(&payload, &mut self.out),
                Ok(Some(Frame::Pong)) => {}
                Ok(Some(Frame::Close(_))) => self.close(frame::CLOSE_NORMAL),
                Ok(None) => break,
                Err(e) => self.fail(&e),
            }
        }
        self.raw_fresh = false;
        if self.raw.is_empty() {
            self.raw = BytesMut::new();
        }
        if !self.out.is_empty() {
            let _ = self.drain_now();
        }
    }

    /// Moves decoded data into `buf`, reading and decoding more if there is none;
    /// `Ok(0)` at the end of the stream, `WouldBlock` when nothing is there yet.
    fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        loop {
            if !self.decoded.is_empty() {
                let n = self.decoded.len();
                buf.extend_from_slice(&self.decoded);
                self.decoded = BytesMut::new();
                return Ok(n);
            }
            if self.closed {
                return Ok(0);
            }
            if !self.raw_fresh {
                match self.inner.try_read_buf(&mut self.raw) {
                    Ok(0) => return Ok(0),
                    Ok(_) => {}
                    Err(e) => {
                        if self.raw.is_empty() {
                            self.raw = BytesMut::new();
                        }
                        return Err(e);
                    }
                }
            }
            self.decode_raw();
        }
    }

    fn fail(&mut self, e: &FrameError) {
        tracing::info!(peer = ?self.inner.peer_addr().ok(), error = %e, "closing WebSocket");
        self.close(e.status());
    }

    /// Queues our close frame (once) and stops reading.
    fn close(&mut self, status: u16) {
        self.closed = true;
        if !self.close_sent {
            self.close_sent = true;
            frame::encode_close(status, &mut self.out);
        }
    }

    /// Writes queued frames without waiting (pongs and close replies must not wait for
    /// the MQTT side to write something).
    fn drain_now(&mut self) -> io::Result<()> {
        let mut cx = Context::from_waker(Waker::noop());
        match self.poll_drain(&mut cx) {
            Poll::Ready(r) => r,
            Poll::Pending => Ok(()),
        }
    }

    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.out.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out.advance(n);
        }
        self.out = BytesMut::new();
        Poll::Ready(Ok(()))
    }
}

impl<T: Transport> Transport for WebSocket<T> {
    const TLS: bool = T::TLS;

    fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.closed || self.raw_fresh || !self.decoded.is_empty() {
            return Poll::Ready(Ok(()));
        }
        self.inner.poll_read_ready(cx)
    }

    fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        self.read_into(buf)
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    fn client_certificate(&self) -> Option<&[u8]> {
        self.inner.client_certificate()
    }

    fn client_certificate_ca(&self) -> Option<&str> {
        self.inner.client_certificate_ca()
    }
}

impl<T: Transport> AsyncRead for WebSocket<T> {
    /// Used while reading CONNECT; afterwards the connection reads through
    /// [`Transport`].
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.decoded.is_empty() || this.closed {
                let n = this.decoded.len().min(out.remaining());
                out.put_slice(&this.decoded[..n]);
                this.decoded.advance(n);
                return Poll::Ready(Ok(()));
            }
            ready!(Transport::poll_read_ready(this, cx))?;
            let mut fresh = BytesMut::new();
            match this.read_into(&mut fresh) {
                Ok(0) => return Poll::Ready(Ok(())),
                Ok(_) => this.decoded = fresh,
                // Spurious readiness: the next `poll_read_ready` registers the waker.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl<T: Transport> AsyncWrite for WebSocket<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_drain(cx))?;
        if self.close_sent {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        frame::encode_binary(buf, &mut self.out);
        // The frame is ours now; what the socket does not take goes out on the next
        // write or flush.
        let _ = self.poll_drain(cx)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.close_sent {
            self.close(frame::CLOSE_NORMAL);
        }
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
