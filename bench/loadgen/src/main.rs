//! `portcullis-loadgen`: HTTP/1.1 keep-alive requests at a constant rate, for `bench/run.sh`.
//!
//! Request `k` of the run is due at `start + k / rate`; connection `i` of `N` sends requests
//! `i, i + N, i + 2N, …`, one in flight at a time. A latency runs from the time the request was
//! *due*, not from when it went out, so a server that stalls is charged for every request it held
//! back (no coordinated omission, as in wrk2).

use std::io::{Error, ErrorKind, Result};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until, timeout};

const HELP: &str = "\
portcullis-loadgen: HTTP/1.1 keep-alive GETs at a constant rate; latency from the scheduled time

usage: portcullis-loadgen --rate REQ_PER_S [options] http://HOST:PORT/PATH

  -R, --rate N         requests per second in all, spread evenly over the connections (required)
  -c, --connections N  keep-alive connections, one request in flight on each (default 50)
  -d, --duration S     seconds measured, after the warm-up (default 10)
      --warmup S       seconds at the same rate before, not measured (default 1)
  -H, --header 'N: V'  an extra request header (repeatable)
  -h, --help           this text

Prints one line: p50_us p99_us achieved_rps errors
(errors: refused or broken connections, timeouts of 10 s and non-2xx answers while measuring).";

/// The longest response head or chunk-size line accepted.
const MAX_HEAD: usize = 64 * 1024;
/// How long one request may take before it counts as an error and its connection is dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The parsed command line, with the request already written out.
struct Args {
    rate: f64,
    connections: usize,
    duration: f64,
    warmup: f64,
    address: String,
    request: Vec<u8>,
}

/// How the response body ends: after this many bytes, or chunked.
#[derive(Debug, PartialEq)]
enum Framing {
    Length(usize),
    Chunked,
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> std::result::Result<Args, String> {
    let mut n = [0.0, 50.0, 10.0, 1.0]; // rate, connections, duration, warm-up
    let (mut url, mut headers) = (None, String::new());
    while let Some(arg) = argv.next() {
        let slot = match arg.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "-R" | "--rate" => 0,
            "-c" | "--connections" => 1,
            "-d" | "--duration" => 2,
            "--warmup" => 3,
            "-H" | "--header" => 4,
            _ if url.is_none() && !arg.starts_with('-') => {
                url = Some(arg);
                continue;
            }
            _ => return Err(format!("unexpected argument: {arg}")),
        };
        let value = argv.next().ok_or(format!("{arg} needs a value"))?;
        if slot < 4 {
            n[slot] = value.parse().map_err(|_| format!("{arg}: not a number"))?;
        } else if value.contains(['\r', '\n']) || !value.contains(':') {
            return Err(format!("not a header: {value:?}"));
        } else {
            headers.push_str(&(value + "\r\n"));
        }
    }
    let [rate, connections, duration, warmup] = n;
    let in_range = |x: f64, max: f64| x > 0.0 && x <= max;
    let valid = in_range(rate, 1e7) && in_range(duration, 86_400.0) && warmup >= 0.0;
    if !(valid && warmup <= 3_600.0 && in_range(connections, 1e5) && connections.fract() == 0.0) {
        return Err(
            "want --rate in (0, 1e7], --connections in [1, 100000], --duration in \
            (0, 86400] and --warmup in [0, 3600]"
                .into(),
        );
    }
    let url = url.ok_or("no URL")?;
    let rest = url.strip_prefix("http://").ok_or("only http:// URLs")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    if authority.is_empty() || path.contains(char::is_whitespace) {
        return Err(format!("bad URL: {url}"));
    }
    let port = authority
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok());
    let address = format!("{authority}{}", if port.is_some() { "" } else { ":80" });
    Ok(Args {
        rate,
        connections: connections as usize,
        duration,
        warmup,
        address,
        request: format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\n{headers}\r\n").into_bytes(),
    })
}

fn invalid(what: &str) -> Error {
    Error::new(ErrorKind::InvalidData, what.to_string())
}

/// Status is 2xx, how the body ends, and whether the connection closes after it.
fn parse_head(head: &[u8]) -> Result<(bool, Framing, bool)> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status = lines
        .next()
        .filter(|l| l.starts_with(b"HTTP/1."))
        .and_then(|l| l.get(9..12))
        .ok_or_else(|| invalid("no status line"))?;
    let (mut framing, mut close) = (None, false);
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            framing = Some(Framing::Chunked);
        } else if name.eq_ignore_ascii_case(b"content-length") && framing.is_none() {
            framing = Some(Framing::Length(parse_number(value, 10)?));
        } else if name.eq_ignore_ascii_case(b"connection") {
            close = value.eq_ignore_ascii_case(b"close");
        }
    }
    let framing = match framing {
        _ if status[0] == b'1' || status == b"204" || status == b"304" => Framing::Length(0),
        Some(framing) => framing,
        None => return Err(invalid("neither Content-Length nor chunked")),
    };
    Ok((status[0] == b'2', framing, close))
}

fn parse_number(digits: &[u8], radix: u32) -> Result<usize> {
    let digits = std::str::from_utf8(digits.trim_ascii()).map_err(|_| invalid("not a number"))?;
    usize::from_str_radix(digits, radix).map_err(|_| invalid("not a number"))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn fill(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Result<()> {
    if buf.len() >= MAX_HEAD {
        return Err(invalid("response head or chunk line too long"));
    }
    match conn.read_buf(buf).await? {
        0 => Err(ErrorKind::UnexpectedEof.into()),
        _ => Ok(()),
    }
}

async fn skip(conn: &mut TcpStream, buf: &mut Vec<u8>, mut n: usize) -> Result<()> {
    loop {
        let take = n.min(buf.len());
        buf.drain(..take);
        n -= take;
        if n == 0 {
            return Ok(());
        }
        fill(conn, buf).await?;
    }
}

async fn read_line(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Vec<u8>> {
    loop {
        if let Some(i) = find(buf, b"\r\n") {
            let line = buf[..i].to_vec();
            buf.drain(..i + 2);
            return Ok(line);
        }
        fill(conn, buf).await?;
    }
}

/// Sends the request (connecting first when there is no connection) and reads the whole answer;
/// returns whether it was 2xx. A connection that the answer closes is dropped.
async fn exchange(stream: &mut Option<TcpStream>, args: &Args, buf: &mut Vec<u8>) -> Result<bool> {
    let conn = match stream {
        Some(conn) => conn,
        None => {
            let conn = TcpStream::connect(&args.address).await?;
            conn.set_nodelay(true)?;
            stream.insert(conn)
        }
    };
    conn.write_all(&args.request).await?;
    buf.clear();
    let head = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i;
        }
        fill(conn, buf).await?;
    };
    let (ok, framing, close) = parse_head(&buf[..head])?;
    buf.drain(..head + 4);
    match framing {
        Framing::Length(n) => skip(conn, buf, n).await?,
        Framing::Chunked => loop {
            let line = read_line(conn, buf).await?;
            let size = line.split(|&b| b == b';').next().unwrap_or_default();
            match parse_number(size, 16)? {
                0 => break while !read_line(conn, buf).await?.is_empty() {}, // trailers
                n => skip(conn, buf, n.saturating_add(2)).await?,
            }
        },
    }
    if close {
        *stream = None;
    }
    Ok(ok)
}

/// Waits until `due`: on the timer (1 ms granularity) until 2 ms before, then by yielding.
async fn pace(due: Instant) {
    if let Some(early) = due.checked_sub(Duration::from_millis(2))
        && Instant::now() < early
    {
        sleep_until(early).await;
    }
    while Instant::now() < due {
        tokio::task::yield_now().await;
    }
}

/// Sends connection `index`'s share of the schedule; returns the latencies in µs of the 2xx
/// answers, the errors, and when the last answer came, all of the measured part.
async fn connection(index: usize, args: Arc<Args>, start: Instant) -> (Vec<u32>, u64, Instant) {
    let from = start + Duration::from_secs_f64(args.warmup);
    let end = from + Duration::from_secs_f64(args.duration);
    let give_up = end + Duration::from_secs_f64(args.duration + 5.0);
    let (mut samples, mut errors, mut last) = (Vec::new(), 0, from);
    let (mut stream, mut buf) = (None, Vec::with_capacity(16 * 1024));
    for k in 0u64.. {
        let offset = (index as f64 + k as f64 * args.connections as f64) / args.rate;
        let due = start + Duration::from_secs_f64(offset);
        if due >= end {
            break;
        }
        if Instant::now() >= give_up {
            errors += u64::from(due >= from); // never sent: the server fell too far behind
            continue;
        }
        pace(due).await;
        let answer = timeout(REQUEST_TIMEOUT, exchange(&mut stream, &args, &mut buf)).await;
        let done = Instant::now();
        if !matches!(answer, Ok(Ok(_))) {
            stream = None;
        }
        if due >= from {
            last = done;
            match answer {
                Ok(Ok(true)) => samples.push(
                    u32::try_from(done.saturating_duration_since(due).as_micros())
                        .unwrap_or(u32::MAX),
                ),
                _ => errors += 1,
            }
        }
    }
    (samples, errors, last)
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1)).copied().unwrap_or(0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => Arc::new(args),
        Err(e) if e.is_empty() => return println!("{HELP}"),
        Err(e) => {
            eprintln!("portcullis-loadgen: {e}\n\n{HELP}");
            std::process::exit(2);
        }
    };
    let start = Instant::now() + Duration::from_millis(50);
    let tasks: Vec<_> = (0..args.connections)
        .map(|i| tokio::spawn(connection(i, args.clone(), start)))
        .collect();
    let (mut samples, mut errors, mut last) = (Vec::new(), 0, start);
    for task in tasks {
        if let Ok((s, e, l)) = task.await {
            samples.extend(s);
            (errors, last) = (errors + e, last.max(l));
        }
    }
    samples.sort_unstable();
    let from = start + Duration::from_secs_f64(args.warmup);
    let elapsed = (last.saturating_duration_since(from).as_secs_f64()).max(args.duration);
    let (p50, p99) = (percentile(&samples, 0.50), percentile(&samples, 0.99));
    println!("{p50} {p99} {:.0} {errors}", samples.len() as f64 / elapsed);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> std::result::Result<Args, String> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn the_request_is_written_from_the_url_and_headers() {
        let a = args(&[
            "-R",
            "100",
            "-H",
            "Cookie: a=b",
            "http://127.0.0.1:8080/x?y",
        ])
        .unwrap();
        assert_eq!(a.address, "127.0.0.1:8080");
        let expected = "GET /x?y HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nCookie: a=b\r\n\r\n";
        assert_eq!(a.request, expected.as_bytes());
        assert_eq!(
            args(&["-R", "1", "http://localhost"]).unwrap().address,
            "localhost:80"
        );
        assert!(
            args(&["http://localhost/"]).is_err(),
            "the rate is required"
        );
        assert!(args(&["-R", "1", "https://localhost/"]).is_err());
        assert!(args(&["-R", "1", "-H", "a: b\r\nc: d", "http://localhost/"]).is_err());
    }

    #[test]
    fn heads_give_status_framing_and_close() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive";
        assert_eq!(parse_head(head).unwrap(), (true, Framing::Length(3), false));
        let head = b"HTTP/1.1 502 Bad\r\ncontent-length: 4\r\nTransfer-Encoding: chunked";
        assert_eq!(parse_head(head).unwrap(), (false, Framing::Chunked, false));
        let head = b"HTTP/1.0 204 No\r\nconnection: close";
        assert_eq!(parse_head(head).unwrap(), (true, Framing::Length(0), true));
        assert!(
            parse_head(b"HTTP/1.1 200 OK").is_err(),
            "read-to-close is not supported"
        );
        assert!(parse_head(b"SSH-2.0").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x").is_err());
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let sorted: Vec<u32> = (1..=100).collect();
        assert_eq!(
            (percentile(&sorted, 0.5), percentile(&sorted, 0.99)),
            (50, 99)
        );
        assert_eq!(percentile(&[], 0.99), 0);
        assert_eq!(percentile(&[7], 0.5), 7);
    }
}
