//! Buffered reader for memcached text-protocol responses.

use std::io;
use std::ops::Range;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;

pub struct Reader {
    rd: OwnedReadHalf,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    scanned: usize,
    timeout: Duration,
}

impl Reader {
    pub fn new(rd: OwnedReadHalf, timeout: Duration) -> Self {
        Reader {
            rd,
            buf: vec![0; 64 * 1024],
            pos: 0,
            end: 0,
            scanned: 0,
            timeout,
        }
    }

    pub fn buf(&self) -> &[u8] {
        &self.buf
    }

    /// Read more bytes, making room for at least `want` more.
    async fn fill(&mut self, want: usize) -> io::Result<()> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
            self.scanned = 0;
        }
        let want = want.max(16 * 1024);
        if self.buf.len() - self.end < want {
            if self.pos > 0 {
                self.buf.copy_within(self.pos..self.end, 0);
                self.end -= self.pos;
                self.scanned -= self.pos;
                self.pos = 0;
            }
            if self.buf.len() - self.end < want {
                let new_len = (self.end + want).next_power_of_two();
                self.buf.resize(new_len, 0);
            }
        }
        let n = match tokio::time::timeout(self.timeout, self.rd.read(&mut self.buf[self.end..]))
            .await
        {
            Ok(r) => r?,
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no response within {:?}", self.timeout),
                ));
            }
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        self.end += n;
        Ok(())
    }

    /// Next line without its "\r\n", as a range into [`Reader::buf`].
    pub async fn line(&mut self) -> io::Result<Range<usize>> {
        loop {
            let from = self.scanned.max(self.pos);
            if let Some(i) = self.buf[from..self.end].iter().position(|&b| b == b'\n') {
                let nl = from + i;
                let start = self.pos;
                let stop = if nl > start && self.buf[nl - 1] == b'\r' {
                    nl - 1
                } else {
                    nl
                };
                self.pos = nl + 1;
                self.scanned = self.pos;
                return Ok(start..stop);
            }
            self.scanned = self.end;
            if self.end - self.pos > 64 * 1024 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "response line longer than 64 KiB",
                ));
            }
            self.fill(0).await?;
        }
    }

    /// Exactly `n` bytes, as a range into [`Reader::buf`].
    pub async fn exact(&mut self, n: usize) -> io::Result<Range<usize>> {
        while self.end - self.pos < n {
            let missing = n - (self.end - self.pos);
            self.fill(missing).await?;
        }
        let start = self.pos;
        self.pos += n;
        self.scanned = self.scanned.max(self.pos);
        Ok(start..start + n)
    }
}
