//! Downloading registered files: mirrors in order, resume by HTTP Range, verify before rename.
//!
//! A present file whose size and sha256 match is used as is; a present file that does not match
//! is refused (it is never overwritten silently). A missing file is downloaded into
//! `<file>.part`: a partial `.part` left by an earlier attempt, or by a connection dropped
//! mid-body, is resumed with `Range: bytes=<n>-`; a mirror that answers 404 is skipped; a
//! completed download is checked for size and sha256 *before* the atomic rename, and a mismatch
//! deletes the partial file and fails naming both hashes. With no network the error says which
//! file is missing and how to supply it by hand.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::registry::{RegisteredFile, sha256_file};
use crate::error::{Error, Result};
use crate::pipeline::Progress;

/// Network settings of a fetch.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    pub connect_timeout: Duration,
    /// Longest silence while reading a response before the attempt is abandoned.
    pub read_timeout: Duration,
    /// Attempts per mirror (a dropped connection resumes on the next attempt).
    pub attempts_per_mirror: usize,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            attempts_per_mirror: 3,
        }
    }
}

/// What [`fetch`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchOutcome {
    /// The file was present and verified.
    Present,
    /// Downloaded from `url`; `resumed_from` bytes came from an earlier partial download.
    Downloaded { url: String, resumed_from: u64 },
}

pub(crate) fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

fn by_hand(entry: &RegisteredFile, dest: &Path) -> String {
    format!(
        "to supply it by hand, {}",
        super::registry::how_to_supply(entry, dest)
    )
}

/// Makes `dest` hold the verified contents of `entry`, downloading if it is missing.
pub fn fetch(
    entry: &RegisteredFile,
    dest: &Path,
    options: &FetchOptions,
    progress: &Progress,
) -> Result<FetchOutcome> {
    if dest.exists() {
        let size = std::fs::metadata(dest)
            .map_err(|e| Error::io("reading", dest, e))?
            .len();
        let actual = sha256_file(dest)?;
        if size == entry.size && actual == entry.sha256 {
            return Ok(FetchOutcome::Present);
        }
        return Err(Error::Other(format!(
            "{} is present but does not match the registry (size {size}, sha256 {actual}; \
             expected size {}, sha256 {}); remove or replace it: {}",
            entry.name,
            entry.size,
            entry.sha256,
            dest.display()
        )));
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("creating folder", parent, e))?;
    }
    let client = client(options)?;
    let part = part_path(dest);
    progress.set_length(entry.size);
    let mut failures = Vec::new();
    for url in &entry.urls {
        for _ in 0..options.attempts_per_mirror.max(1) {
            let resumed_from = file_len(&part);
            match download_into(&client, url, &part, Some(entry.size), progress) {
                Ok(Transfer::Complete) => {
                    return finish(entry, dest, &part).map(|()| FetchOutcome::Downloaded {
                        url: url.clone(),
                        resumed_from,
                    });
                }
                Ok(Transfer::NotFound) => {
                    failures.push(format!("{url}: 404 not found"));
                    break;
                }
                Err(message) => failures.push(format!("{url}: {message}")),
            }
        }
    }
    Err(Error::Other(format!(
        "could not download {} ({}); {}",
        entry.name,
        failures.join("; "),
        by_hand(entry, dest)
    )))
}

/// The HTTP client of every download.
pub(crate) fn client(options: &FetchOptions) -> Result<reqwest::blocking::Client> {
    // Fails only when a provider is already installed (a second client), which is the one wanted.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .connect_timeout(options.connect_timeout)
        // The blocking client applies this to the request and to each read of the body: a
        // stalled server fails the attempt, a slow but steady one does not.
        .timeout(options.read_timeout)
        .build()
        .map_err(|e| Error::Other(format!("starting the HTTP client: {e}")))
}

pub(crate) fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

pub(crate) enum Transfer {
    Complete,
    NotFound,
}

/// The total size a response announces: the part after '/' of `Content-Range` for a 206, the
/// `Content-Length` for a 200.
fn announced_size(response: &reqwest::blocking::Response, offset: u64) -> Option<u64> {
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    match response.status().as_u16() {
        206 => header(reqwest::header::CONTENT_RANGE)
            .and_then(|r| r.rsplit('/').next().and_then(|t| t.trim().parse().ok()))
            .or_else(|| response.content_length().map(|n| n + offset)),
        _ => response.content_length(),
    }
}

/// One HTTP attempt, appending to `part` from its current length. `size` is the registered
/// size when there is one; otherwise the server's announcement decides when the file is whole.
pub(crate) fn download_into(
    client: &reqwest::blocking::Client,
    url: &str,
    part: &Path,
    size: Option<u64>,
    progress: &Progress,
) -> std::result::Result<Transfer, String> {
    let mut offset = file_len(part);
    if let Some(size) = size {
        if offset > size {
            std::fs::remove_file(part)
                .map_err(|e| format!("removing oversized {}: {e}", part.display()))?;
            offset = 0;
        }
        if offset == size {
            return Ok(Transfer::Complete);
        }
    }
    let mut request = client.get(url);
    if offset > 0 {
        request = request.header(reqwest::header::RANGE, format!("bytes={offset}-"));
    }
    let mut response = request.send().map_err(|e| e.to_string())?;
    let status = response.status();
    let append = match status.as_u16() {
        404 => return Ok(Transfer::NotFound),
        206 => true,
        200 => false,
        // A range at or past the end of an unregistered file: it is already whole.
        416 if size.is_none() && offset > 0 => return Ok(Transfer::Complete),
        code => return Err(format!("HTTP {code}")),
    };
    let size = size.or_else(|| announced_size(&response, offset));
    if let Some(size) = size {
        progress.set_length(size);
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(append)
        .write(true)
        .truncate(!append)
        .open(part)
        .map_err(|e| format!("opening {}: {e}", part.display()))?;
    let mut written = if append { offset } else { 0 };
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = response
            .read(&mut buf)
            .map_err(|e| format!("connection broke: {e}"))?;
        if n == 0 {
            break;
        }
        if let Some(size) = size
            && written + n as u64 > size
        {
            drop(file);
            let _ = std::fs::remove_file(part);
            return Err(format!("server sent more than the expected {size} bytes"));
        }
        file.write_all(&buf[..n])
            .map_err(|e| format!("writing {}: {e}", part.display()))?;
        written += n as u64;
        progress.set_position(written);
    }
    file.sync_all()
        .map_err(|e| format!("syncing {}: {e}", part.display()))?;
    if let Some(size) = size
        && written < size
    {
        return Err(format!("connection closed after {written} of {size} bytes"));
    }
    Ok(Transfer::Complete)
}

/// Verifies the finished `.part` and renames it into place, or deletes it.
fn finish(entry: &RegisteredFile, dest: &Path, part: &Path) -> Result<()> {
    let actual = sha256_file(part)?;
    if actual != entry.sha256 {
        let _ = std::fs::remove_file(part);
        return Err(Error::Other(format!(
            "downloaded {} has sha256 {actual}, expected {}; the partial file was deleted: {}",
            entry.name,
            entry.sha256,
            dest.display()
        )));
    }
    std::fs::rename(part, dest).map_err(|e| Error::io("renaming into place", dest, e))
}

#[cfg(test)]
mod tests {
    //! Fault injection against a real HTTP server on 127.0.0.1 (never any other address). The
    //! server handles a bounded number of requests and stops by itself after a deadline.

    use super::*;
    use sha2::Digest;
    use std::io::BufRead;
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    /// How the test server misbehaves.
    #[derive(Clone, Copy, PartialEq)]
    enum Fault {
        None,
        /// The first response promises the whole body but the connection drops half-way.
        DropFirst,
        /// Answers every request with 404.
        NotFound,
        /// Serves bytes of the right length but the wrong content.
        WrongBytes,
        /// Waits before answering, longer than the client's read timeout.
        Slow(Duration),
    }

    struct Server {
        base: String,
        /// Range headers seen, in order (empty string for none).
        ranges: Arc<Mutex<Vec<String>>>,
    }

    fn serve(body: Vec<u8>, fault: Fault) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let ranges = Arc::new(Mutex::new(Vec::new()));
        let seen = ranges.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut handled = 0;
            while handled < 16 && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        handle(stream, &body, fault, handled == 0, &seen);
                        handled += 1;
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Server { base, ranges }
    }

    fn handle(
        stream: TcpStream,
        body: &[u8],
        fault: Fault,
        first: bool,
        seen: &Mutex<Vec<String>>,
    ) {
        let _ = stream.set_nonblocking(false);
        let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
        let mut range = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                range = v.trim().trim_end_matches('-').to_string();
            }
        }
        seen.lock().unwrap().push(range.clone());
        let mut stream = stream;
        if let Fault::Slow(delay) = fault {
            std::thread::sleep(delay);
        }
        if fault == Fault::NotFound {
            let _ = stream.write_all(
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
            return;
        }
        let mut payload = body.to_vec();
        if fault == Fault::WrongBytes {
            payload.iter_mut().for_each(|b| *b = b.wrapping_add(1));
        }
        let start: usize = range.parse().unwrap_or(0);
        let (status, slice) = if start > 0 {
            ("206 Partial Content", &payload[start..])
        } else {
            ("200 OK", &payload[..])
        };
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            slice.len()
        );
        let _ = stream.write_all(head.as_bytes());
        if fault == Fault::DropFirst && first {
            let _ = stream.write_all(&slice[..slice.len() / 2]);
            let _ = stream.flush();
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        }
        let _ = stream.write_all(slice);
    }

    fn payload() -> Vec<u8> {
        (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect()
    }

    fn entry(urls: Vec<String>, body: &[u8]) -> RegisteredFile {
        RegisteredFile {
            name: "test-file".into(),
            file: "file.bin".into(),
            size: body.len() as u64,
            sha256: sha2::Sha256::digest(body)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            urls,
            source: None,
        }
    }

    fn quick() -> FetchOptions {
        FetchOptions {
            connect_timeout: Duration::from_secs(2),
            read_timeout: Duration::from_millis(500),
            attempts_per_mirror: 3,
        }
    }

    #[test]
    fn downloads_and_verifies() {
        let body = payload();
        let server = serve(body.clone(), Fault::None);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("file.bin");
        let e = entry(vec![format!("{}/f", server.base)], &body);
        let outcome = fetch(&e, &dest, &quick(), &Progress::hidden()).unwrap();
        assert!(matches!(
            outcome,
            FetchOutcome::Downloaded {
                resumed_from: 0,
                ..
            }
        ));
        assert_eq!(std::fs::read(&dest).unwrap(), body);
        // Present and verified: no second download.
        assert_eq!(
            fetch(&e, &dest, &quick(), &Progress::hidden()).unwrap(),
            FetchOutcome::Present
        );
    }

    /// A connection dropped mid-body is resumed with a Range request, not restarted.
    #[test]
    fn a_dropped_connection_resumes() {
        let body = payload();
        let server = serve(body.clone(), Fault::DropFirst);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("file.bin");
        let e = entry(vec![format!("{}/f", server.base)], &body);
        fetch(&e, &dest, &quick(), &Progress::hidden()).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), body);
        let ranges = server.ranges.lock().unwrap().clone();
        assert_eq!(ranges.len(), 2, "{ranges:?}");
        assert_eq!(ranges[0], "");
        assert_eq!(ranges[1], (body.len() / 2).to_string());
    }

    #[test]
    fn a_404_mirror_is_skipped() {
        let body = payload();
        let missing = serve(body.clone(), Fault::NotFound);
        let good = serve(body.clone(), Fault::None);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("file.bin");
        let e = entry(
            vec![format!("{}/f", missing.base), format!("{}/f", good.base)],
            &body,
        );
        let outcome = fetch(&e, &dest, &quick(), &Progress::hidden()).unwrap();
        assert_eq!(
            outcome,
            FetchOutcome::Downloaded {
                url: format!("{}/f", good.base),
                resumed_from: 0
            }
        );
        assert_eq!(
            missing.ranges.lock().unwrap().len(),
            1,
            "404 is not retried"
        );
    }

    /// Wrong bytes are refused and nothing is left behind.
    #[test]
    fn wrong_bytes_are_refused_and_removed() {
        let body = payload();
        let server = serve(body.clone(), Fault::WrongBytes);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("file.bin");
        let e = entry(vec![format!("{}/f", server.base)], &body);
        let err = fetch(&e, &dest, &quick(), &Progress::hidden())
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("expected {}", e.sha256)), "{err}");
        assert!(!dest.exists());
        assert!(!part_path(&dest).exists());
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    }

    #[test]
    fn a_slow_server_times_out_with_a_clear_error() {
        let body = payload();
        let server = serve(body.clone(), Fault::Slow(Duration::from_millis(1500)));
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("file.bin");
        let e = entry(vec![format!("{}/f", server.base)], &body);
        let options = FetchOptions {
            attempts_per_mirror: 1,
            ..quick()
        };
        let started = Instant::now();
        let err = fetch(&e, &dest, &options, &Progress::hidden())
            .unwrap_err()
            .to_string();
        assert!(
            started.elapsed() < Duration::from_millis(1400),
            "did not time out"
        );
        assert!(err.contains("could not download test-file"), "{err}");
        assert!(err.contains("to supply it by hand"), "{err}");
    }

    /// No server at all (a closed local port): the error says how to supply the file.
    #[test]
    fn offline_error_says_how_to_supply_the_file() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let body = payload();
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("file.bin");
        let e = entry(vec![format!("http://127.0.0.1:{port}/f")], &body);
        let err = fetch(&e, &dest, &quick(), &Progress::hidden())
            .unwrap_err()
            .to_string();
        assert!(err.contains(&dest.display().to_string()), "{err}");
        assert!(err.contains(&format!("sha256 {}", e.sha256)), "{err}");
    }

    /// A present file that does not match is refused, never overwritten.
    #[test]
    fn a_present_mismatching_file_is_not_overwritten() {
        let body = payload();
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("file.bin");
        std::fs::write(&dest, b"user data").unwrap();
        let e = entry(vec!["http://127.0.0.1:9/never".into()], &body);
        let err = fetch(&e, &dest, &quick(), &Progress::hidden())
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not match the registry"), "{err}");
        assert_eq!(std::fs::read(&dest).unwrap(), b"user data");
    }
}
