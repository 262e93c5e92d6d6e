//! floor: the cheapest server the load generator can run against. It
//! stores nothing: a retrieval command is answered `END` (a miss), a storage
//! command `STORED` once its data block has arrived, anything else `ERROR`.
//! Run beside memcached and memcrab (`FLOOR=1 scripts/bench.sh`), it shows
//! how much of a server's cost per request is the kernel's (syscalls,
//! loopback TCP, wake-ups), and so how much any server could still win.
//!
//!   floor [--uring | --tokio] [-l ADDR] [-p PORT] [memcached flags, ignored]
//!
//! Default: one thread on edge-triggered epoll (mio); each wake-up reads
//! what arrived, answers every complete command and writes once, as
//! memcrab does. `--uring`: one io_uring, multishot accept and receive
//! into provided buffers, one send per batch; every loop submits all
//! connections' sends and waits with a single `io_uring_enter`.
//! `--tokio`: a task per connection on one current-thread tokio runtime
//! (memcrab's runtime shape), to price the runtime against raw epoll.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

fn main() {
    let mut addr = "127.0.0.1".to_string();
    let mut port = "11211".to_string();
    let mut mode = "epoll";
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--uring" => mode = "uring",
            "--tokio" => mode = "tokio",
            "-l" => addr = args.next().unwrap_or(addr),
            "-p" => port = args.next().unwrap_or(port),
            // memcached's flags that take a value (bench.sh passes them).
            _ if a.starts_with('-') && a.len() == 2 => {
                args.next();
            }
            _ => {}
        }
    }
    let addr: SocketAddr = format!("{addr}:{port}").parse().unwrap_or_else(|e| {
        eprintln!("floor: bad address: {e}");
        std::process::exit(2)
    });
    let r = match mode {
        "uring" => uring::run(addr),
        "tokio" => on_tokio::run(addr),
        _ => epoll::run(addr),
    };
    if let Err(e) = r {
        eprintln!("floor: {e}");
        std::process::exit(1);
    }
}

/// Answers every complete command at the start of `input` into `out`;
/// returns the bytes consumed (a command missing its line end or data
/// block waits for more).
fn answer(input: &[u8], out: &mut Vec<u8>) -> usize {
    let mut done = 0;
    while let Some(nl) = input[done..].iter().position(|&b| b == b'\n') {
        let line = input[done..done + nl].trim_ascii_end();
        let mut tokens = line.split(|&b| b == b' ').filter(|t| !t.is_empty());
        let mut end = done + nl + 1;
        let reply: &[u8] = match tokens.next().unwrap_or_default() {
            b"get" | b"gets" | b"gat" | b"gats" => b"END\r\n",
            b"set" | b"add" | b"replace" | b"append" | b"prepend" | b"cas" => {
                let bytes = tokens.nth(3).and_then(|t| std::str::from_utf8(t).ok());
                let Some(bytes) = bytes.and_then(|t| t.parse::<usize>().ok()) else {
                    out.extend_from_slice(b"CLIENT_ERROR bad command line format\r\n");
                    done = end;
                    continue;
                };
                end += bytes + 2;
                if end > input.len() {
                    break;
                }
                if line.ends_with(b" noreply") {
                    b""
                } else {
                    b"STORED\r\n"
                }
            }
            _ => b"ERROR\r\n",
        };
        out.extend_from_slice(reply);
        done = end;
    }
    done
}

/// The index of a free connection slot (a new one if none is free).
fn free_slot<T>(conns: &mut Vec<Option<T>>) -> usize {
    conns.iter().position(Option::is_none).unwrap_or_else(|| {
        conns.push(None);
        conns.len() - 1
    })
}

mod epoll {
    use super::*;
    use mio::net::{TcpListener, TcpStream};
    use mio::{Events, Interest, Poll, Token};

    const LISTENER: Token = Token(usize::MAX);
    const CHUNK: usize = 16 * 1024;

    struct Conn {
        stream: TcpStream,
        /// Read buffer: `input[..filled]` holds what arrived; it is zeroed
        /// only when it grows (a data block larger than it).
        input: Vec<u8>,
        filled: usize,
        /// Replies the socket has not taken yet.
        out: Vec<u8>,
    }

    pub fn run(addr: SocketAddr) -> io::Result<()> {
        let mut poll = Poll::new()?;
        let mut listener = TcpListener::bind(addr)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let mut conns: Vec<Option<Conn>> = Vec::new();
        let mut events = Events::with_capacity(1024);
        loop {
            poll.poll(&mut events, None)?;
            for ev in &events {
                if ev.token() == LISTENER {
                    while let Ok((mut stream, _)) = listener.accept() {
                        stream.set_nodelay(true)?;
                        let slot = free_slot(&mut conns);
                        let both = Interest::READABLE | Interest::WRITABLE;
                        poll.registry().register(&mut stream, Token(slot), both)?;
                        let (input, out) = (vec![0; CHUNK], Vec::new());
                        conns[slot] = Some(Conn {
                            stream,
                            input,
                            filled: 0,
                            out,
                        });
                    }
                    continue;
                }
                let slot = ev.token().0;
                let Some(conn) = conns[slot].as_mut() else {
                    continue;
                };
                if serve(conn).is_err() {
                    conns[slot] = None;
                }
            }
        }
    }

    /// Reads until the socket is empty, answers, writes what it takes.
    fn serve(c: &mut Conn) -> io::Result<()> {
        loop {
            if c.filled == c.input.len() {
                c.input.resize(c.input.len() * 2, 0);
            }
            let room = c.input.len() - c.filled;
            match c.stream.read(&mut c.input[c.filled..]) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    c.filled += n;
                    let used = answer(&c.input[..c.filled], &mut c.out);
                    c.input.copy_within(used..c.filled, 0);
                    c.filled -= used;
                    if n < room {
                        break; // a short read emptied the socket
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        while !c.out.is_empty() {
            match c.stream.write(&c.out) {
                Ok(n) => {
                    c.out.drain(..n);
                }
                // The WRITABLE edge brings us back.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

mod on_tokio {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    pub fn run(addr: SocketAddr) -> io::Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            loop {
                let (stream, _) = listener.accept().await?;
                stream.set_nodelay(true)?;
                tokio::spawn(serve(stream));
            }
        })
    }

    async fn serve(mut stream: tokio::net::TcpStream) {
        let mut input = Vec::with_capacity(16 * 1024);
        let mut out = Vec::with_capacity(16 * 1024);
        loop {
            if input.capacity() - input.len() < 4096 {
                input.reserve(16 * 1024);
            }
            match stream.read_buf(&mut input).await {
                Ok(n) if n > 0 => {}
                _ => return,
            }
            let used = answer(&input, &mut out);
            input.drain(..used);
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
    }
}

mod uring {
    use super::*;
    use io_uring::{IoUring, cqueue, opcode, squeue, types};
    use std::os::fd::{AsRawFd, RawFd};

    const ACCEPT: u64 = u64::MAX;
    const PROVIDE: u64 = u64::MAX - 1;
    const GROUP: u16 = 1;
    const BUFS: u16 = 1024;
    const BUF_LEN: usize = 4096;
    const RECV: u64 = 0;
    const SEND: u64 = 1;

    struct Conn {
        fd: RawFd,
        input: Vec<u8>,
        /// Replies gathered while a send is in flight.
        out: Vec<u8>,
        /// The bytes of the send in flight: not touched until it completes.
        sending: Vec<u8>,
        in_flight: bool,
        closing: bool,
    }

    struct Ring {
        ring: IoUring,
    }

    impl Ring {
        /// # Safety
        /// Every buffer `sqe` points at must stay alive and unmoved until
        /// its completion arrives.
        unsafe fn push(&mut self, sqe: squeue::Entry) -> io::Result<()> {
            loop {
                // SAFETY: the caller's promise.
                if unsafe { self.ring.submission().push(&sqe) }.is_ok() {
                    return Ok(());
                }
                self.ring.submit()?; // full: hand the queue to the kernel
            }
        }
    }

    pub fn run(addr: SocketAddr) -> io::Result<()> {
        let listener = std::net::TcpListener::bind(addr)?;
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_coop_taskrun()
            .build(4096)?;
        let mut ring = Ring { ring };
        // Receive buffers, lent to the kernel and given back after each
        // completion; they live (unmoved) as long as the ring is used.
        let mut pool = vec![0u8; usize::from(BUFS) * BUF_LEN].into_boxed_slice();
        let provide = |pool: &mut [u8], bid: u16, n: u16| {
            let at = usize::from(bid) * BUF_LEN;
            let ptr = pool[at..].as_mut_ptr();
            opcode::ProvideBuffers::new(ptr, BUF_LEN as i32, n, GROUP, bid)
                .build()
                .user_data(PROVIDE)
        };
        // SAFETY: `pool` outlives the ring's use (this function).
        unsafe {
            ring.push(provide(&mut pool, 0, BUFS))?;
            let accept = opcode::AcceptMulti::new(types::Fd(listener.as_raw_fd()));
            ring.push(accept.build().user_data(ACCEPT))?;
        }
        let mut conns: Vec<Option<Conn>> = Vec::new();
        let mut done = Vec::new();
        loop {
            ring.ring.submit_and_wait(1)?;
            done.clear();
            done.extend(
                ring.ring
                    .completion()
                    .map(|c| (c.user_data(), c.result(), c.flags())),
            );
            for &(data, res, flags) in &done {
                match data {
                    PROVIDE => {}
                    ACCEPT => {
                        if res < 0 {
                            continue;
                        }
                        set_nodelay(res);
                        let slot = free_slot(&mut conns);
                        conns[slot] = Some(Conn {
                            fd: res,
                            input: Vec::new(),
                            out: Vec::new(),
                            sending: Vec::new(),
                            in_flight: false,
                            closing: false,
                        });
                        // SAFETY: provided buffers only (the pool).
                        unsafe { ring.push(recv(res, slot))? };
                    }
                    _ => {
                        let slot = (data >> 1) as usize;
                        let Some(c) = conns[slot].as_mut() else {
                            continue;
                        };
                        if data & 1 == SEND {
                            c.in_flight = false;
                            let sent = usize::try_from(res).unwrap_or(c.sending.len());
                            c.sending.drain(..sent.min(c.sending.len()));
                        } else if res == -libc::ENOBUFS {
                            // The pool ran dry; given-back buffers are queued.
                            // SAFETY: provided buffers only.
                            unsafe { ring.push(recv(c.fd, slot))? };
                        } else if res <= 0 {
                            c.closing = true;
                        } else {
                            let Some(bid) = cqueue::buffer_select(flags) else {
                                continue;
                            };
                            let at = usize::from(bid) * BUF_LEN;
                            c.input.extend_from_slice(&pool[at..at + res as usize]);
                            // SAFETY: the pool outlives the ring's use.
                            unsafe { ring.push(provide(&mut pool, bid, 1))? };
                            let used = answer(&c.input, &mut c.out);
                            c.input.drain(..used);
                            if !cqueue::more(flags) {
                                // SAFETY: provided buffers only.
                                unsafe { ring.push(recv(c.fd, slot))? };
                            }
                        }
                        if !c.in_flight {
                            if c.sending.is_empty() {
                                std::mem::swap(&mut c.sending, &mut c.out);
                            }
                            if !c.sending.is_empty() && !c.closing {
                                let (ptr, len) = (c.sending.as_ptr(), c.sending.len() as u32);
                                let send = opcode::Send::new(types::Fd(c.fd), ptr, len);
                                // SAFETY: `sending` is neither changed nor
                                // dropped while `in_flight` (the slot stays
                                // until its send completes).
                                unsafe { ring.push(send.build().user_data(tag(slot, SEND)))? };
                                c.in_flight = true;
                            } else if c.closing {
                                // SAFETY: a descriptor this loop owns.
                                unsafe { libc::close(c.fd) };
                                conns[slot] = None;
                            }
                        }
                    }
                }
            }
        }
    }

    fn tag(slot: usize, kind: u64) -> u64 {
        (slot as u64) << 1 | kind
    }

    fn recv(fd: RawFd, slot: usize) -> squeue::Entry {
        opcode::RecvMulti::new(types::Fd(fd), GROUP)
            .build()
            .user_data(tag(slot, RECV))
    }

    fn set_nodelay(fd: RawFd) {
        let one: libc::c_int = 1;
        // SAFETY: a valid option pointer and length for TCP_NODELAY.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&raw const one).cast(),
                std::mem::size_of_val(&one) as libc::socklen_t,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::answer;

    #[test]
    fn answers_complete_commands_only() {
        let mut out = Vec::new();
        let input = b"get a b\r\nset k 0 0 3\r\nabc\r\nset k 0 0 3 noreply\r\nxyz\r\nbogus\r\nset k 0 0 5\r\nab";
        let used = answer(input, &mut out);
        assert_eq!(out, b"END\r\nSTORED\r\nERROR\r\n");
        assert_eq!(&input[used..], b"set k 0 0 5\r\nab");
        out.clear();
        assert_eq!(answer(b"get x", &mut out), 0);
        assert_eq!(answer(b"set k 0 0 z\r\n", &mut out), 13);
        assert_eq!(out, b"CLIENT_ERROR bad command line format\r\n");
    }
}
