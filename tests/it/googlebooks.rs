//! Google Books slices: the offline sample on the vendored 4-gram slice, and the paper
//! configuration's download stage against a loopback HTTP server (127.0.0.1 only) serving the
//! vendored total counts and generated 5-gram slices in the exact v2 format: sizes announced,
//! download, resume after a dropped connection, a 404 slice skipped and recorded, the lock
//! refusing a file that disagrees, and the downloaded slices run through to embeddings.

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::{Workspace, repo_root};

const GB: &str = "googlebooks";

fn vendored(name: &str) -> Vec<u8> {
    std::fs::read(repo_root().join("data").join(GB).join(name)).unwrap()
}

fn sample_workspace() -> Workspace {
    let ws = Workspace::with_data(
        "googlebooks-sample",
        &[
            "googlebooks/googlebooks-eng-all-totalcounts-20120701.txt",
            "googlebooks/googlebooks-eng-all-4gram-20120701-zz.gz",
        ],
    );
    std::fs::copy(
        repo_root().join("data/googlebooks.lock"),
        ws.path().join("data/googlebooks.lock"),
    )
    .unwrap();
    ws
}

/// The offline sample reads every line of the real slice and its co-occurrence weights agree
/// with a count made here from the raw lines.
#[test]
fn sample_runs_offline_on_the_vendored_slice() {
    let ws = sample_workspace();
    ws.run(&["run", "googlebooks-sample", "-q"]).expect_code(0);
    let slices = ws.table("googlebooks-sample", "slices");
    let row = &slices.rows[0];
    assert_eq!(slices.f64(row, "lines"), 2918.0);
    assert_eq!(slices.f64(row, "ngrams"), 98.0);
    assert_eq!(slices.f64(row, "malformed"), 0.0);
    let vocabulary = ws.table("googlebooks-sample", "vocabulary");
    assert_eq!(vocabulary.str(&vocabulary.rows[0], "word"), "ZZ");

    // Independent count: "Best" right after "ZZZZ" in the untagged 4-grams that start with
    // "ZZZZ", 1800–2008, weight 1 per occurrence.
    let mut text = String::new();
    flate2::read::GzDecoder::new(&vendored("googlebooks-eng-all-4gram-20120701-zz.gz")[..])
        .read_to_string(&mut text)
        .unwrap();
    let expected: f64 = text
        .lines()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|f| f[0].starts_with("ZZZZ Best "))
        .filter(|f| (1800..=2008).contains(&f[1].parse::<i32>().unwrap()))
        .map(|f| f[2].parse::<f64>().unwrap())
        .sum();
    assert!(expected > 0.0);
    let pairs = ws.table("googlebooks-sample", "cooccurrence");
    let weight = |w: &str, c: &str| {
        pairs
            .rows
            .iter()
            .find(|r| pairs.str(r, "word") == w && pairs.str(r, "context") == c)
            .map(|r| pairs.f64(r, "weight"))
    };
    assert_eq!(weight("ZZZZ", "Best"), Some(expected));
    assert_eq!(weight("Best", "ZZZZ"), Some(expected));
}

/// What the server saw: (method, path, range start).
type Log = Arc<Mutex<Vec<(String, String, u64)>>>;

struct Server {
    base: String,
    log: Log,
    stop: Arc<AtomicBool>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Serves `files` by name under `/books/`, 404 for anything else; the first GET of
/// `drop_first` sends half its body and closes the connection.
fn serve(files: BTreeMap<String, Vec<u8>>, drop_first: Option<&str>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}/books/", listener.local_addr().unwrap());
    let log: Log = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let (seen, stopped) = (log.clone(), stop.clone());
    let mut dropping = drop_first.map(str::to_string);
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !stopped.load(Ordering::Relaxed) && Instant::now() < deadline {
            match listener.accept() {
                Ok((stream, _)) => handle(stream, &files, &mut dropping, &seen),
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    });
    Server { base, log, stop }
}

fn handle(
    stream: TcpStream,
    files: &BTreeMap<String, Vec<u8>>,
    dropping: &mut Option<String>,
    log: &Log,
) {
    let _ = stream.set_nonblocking(false);
    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
    let mut request = String::new();
    let _ = reader.read_line(&mut request);
    let mut range = 0u64;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
            range = v.trim().trim_end_matches('-').parse().unwrap_or(0);
        }
    }
    let mut parts = request.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    log.lock()
        .unwrap()
        .push((method.clone(), path.clone(), range));
    let mut stream = stream;
    let Some(body) = path
        .strip_prefix("/books/")
        .and_then(|name| files.get(name))
    else {
        let _ = stream
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        return;
    };
    let start = (range as usize).min(body.len());
    let slice = &body[start..];
    let head = if start > 0 {
        format!(
            "HTTP/1.1 206 Partial Content\r\ncontent-length: {}\r\ncontent-range: bytes {start}-{}/{}\r\nconnection: close\r\n\r\n",
            slice.len(),
            body.len() - 1,
            body.len()
        )
    } else {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            slice.len()
        )
    };
    let _ = stream.write_all(head.as_bytes());
    if method == "HEAD" {
        return;
    }
    if method == "GET" && dropping.as_deref().is_some_and(|d| path.ends_with(d)) {
        *dropping = None;
        let _ = stream.write_all(&slice[..slice.len() / 2]);
        let _ = stream.flush();
        let _ = stream.shutdown(std::net::Shutdown::Both);
        return;
    }
    let _ = stream.write_all(slice);
}

fn gzip(text: &str) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap()
}

fn slice_file(suffix: &str) -> String {
    format!("googlebooks-eng-all-5gram-20120701-{suffix}.gz")
}

#[test]
fn paper_configuration_downloads_from_a_loopback_server() {
    use symbreak::corpus::ngram::synthetic;
    let totals = "googlebooks-eng-all-totalcounts-20120701.txt";
    let files = BTreeMap::from([
        (totals.to_string(), vendored(totals)),
        (
            slice_file("ab"),
            gzip(&synthetic::slice(11, 5, 3000, 1780, 2008)),
        ),
        (
            slice_file("ad"),
            gzip(&synthetic::slice(12, 5, 3000, 1780, 2008)),
        ),
    ]);
    let ab_size = files[&slice_file("ab")].len() as u64;
    let server = serve(files.clone(), Some(&slice_file("ab")));
    let ws = Workspace::with_spec("dwe-googlebooks");
    ws.edit_spec("dwe-googlebooks", |t| {
        t.replace(
            "http://storage.googleapis.com/books/ngrams/books/",
            &server.base,
        )
        .replace("slices = [\"a_..zz\"]", "slices = [\"ab..ad\"]")
    });

    // Sizes first, nothing downloaded.
    let dry = ws.run(&["fetch", "dwe-googlebooks", "--dry-run"]);
    dry.expect_code(0);
    assert!(
        dry.stdout().contains(&format!("{ab_size} bytes")),
        "{}",
        dry.stdout()
    );
    assert!(dry.stdout().contains("1 not available"), "{}", dry.stdout());
    assert!(!ws.path().join("data/googlebooks").exists());

    let fetch = ws.run(&["fetch", "dwe-googlebooks", "-j", "2"]);
    fetch.expect_code(0);
    assert!(
        fetch
            .stdout()
            .contains("3 files fetched or present and pinned, 1 not on the server")
            && fetch.stdout().contains("fetch[slice=ac]"),
        "{}",
        fetch.stdout()
    );
    assert!(fetch.stderr().contains("warning:") && fetch.stderr().contains("-ac.gz"));
    for (name, body) in &files {
        assert_eq!(
            &std::fs::read(ws.path().join("data/googlebooks").join(name)).unwrap(),
            body
        );
    }
    // The dropped download resumed where it broke off.
    let gets: Vec<u64> = server
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|(m, p, _)| m == "GET" && p.ends_with(&slice_file("ab")))
        .map(|(_, _, r)| *r)
        .collect();
    assert_eq!(gets, [0, ab_size / 2]);
    let lock = std::fs::read_to_string(ws.path().join("data/googlebooks.lock")).unwrap();
    assert_eq!(lock.matches("[[file]]").count(), 3, "{lock}");
    assert!(
        lock.contains("[[missing]]") && lock.contains(&slice_file("ac")),
        "{lock}"
    );

    // Fetched once: a second fetch asks the server nothing.
    let requests = server.log.lock().unwrap().len();
    ws.run(&["fetch", "dwe-googlebooks"]).expect_code(0);
    assert_eq!(server.log.lock().unwrap().len(), requests);

    // The downloaded slices run through the dwe stages (at toy size).
    ws.edit_spec("dwe-googlebooks", |t| {
        t.replace("vocabulary = 10000", "vocabulary = 60")
            .replace("dim = 100", "dim = 4")
            .replace("iterations = 10000", "iterations = 30")
            .replace("minibatch = 1000", "minibatch = 20")
            .replace("seeds = 3", "seeds = 1")
            .replace("record_every = 500", "record_every = 10")
    });
    ws.run(&["run", "dwe-googlebooks", "-q"]).expect_code(0);
    let run = ws.latest("dwe-googlebooks");
    assert!(run.join("tables").read_dir().unwrap().count() > 0);

    // On a cluster, the slice reduction is one array over the slices, and the tables are the
    // local run's.
    if crate::slurm::cluster("paper_configuration_downloads_from_a_loopback_server (Slurm part)") {
        let on_slurm = crate::slurm::slurm_run(
            &ws,
            &[
                "run",
                "dwe-googlebooks",
                "--executor",
                "slurm",
                "--from",
                "preprocess",
                "--chunk",
                "1",
            ],
            &[],
        );
        on_slurm.expect_code(0);
        let said = on_slurm.stdout();
        assert!(
            said.lines()
                .any(|l| l.contains("3 task(s) of preprocess (3 instance(s))")),
            "{said}"
        );
        ws.run(&[
            "diff",
            run.to_str().unwrap(),
            ws.latest("dwe-googlebooks").to_str().unwrap(),
            "--rel-tol",
            "0",
            "--abs-tol",
            "0",
        ])
        .expect_code(0);
    }

    // A file that disagrees with its lock entry is refused and nothing is kept.
    let ad = ws.path().join("data/googlebooks").join(slice_file("ad"));
    std::fs::remove_file(&ad).unwrap();
    std::fs::remove_dir_all(ws.path().join(".symbreak")).unwrap();
    let sha = symbreak::data::registry::sha256_file(&repo_root().join("Cargo.lock")).unwrap();
    let lock_path = ws.path().join("data/googlebooks.lock");
    let text = std::fs::read_to_string(&lock_path).unwrap();
    let ad_sha = {
        let at = text.find(&slice_file("ad")).unwrap();
        let from = text[at..].find("sha256 = \"").unwrap() + at + 10;
        text[from..from + 64].to_string()
    };
    std::fs::write(&lock_path, text.replace(&ad_sha, &sha)).unwrap();
    let refused = ws.run(&["fetch", "dwe-googlebooks"]);
    refused.expect_code(2);
    assert!(
        refused.stderr().contains("does not match") && refused.stderr().contains("refused"),
        "{}",
        refused.stderr()
    );
    assert!(!ad.exists());
    assert!(
        !ws.path()
            .join("data/googlebooks")
            .join(format!("{}.part", slice_file("ad")))
            .exists()
    );
}

/// Regression: the slice files' content was in no key, so a changed slice was served the old
/// counts from the cache. Now the reduce instance is stale, names the file, and the run refuses
/// the content the lock did not pin.
#[test]
fn googlebooks_keys_follow_the_slice_contents() {
    let ws = sample_workspace();
    ws.run(&["run", "googlebooks-sample", "--quiet"])
        .expect_code(0);
    let slice = ws
        .path()
        .join("data/googlebooks/googlebooks-eng-all-4gram-20120701-zz.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"zz top of the\t1900\t7\t3\n").unwrap();
    let member = gz.finish().unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&slice)
        .unwrap()
        .write_all(&member)
        .unwrap();
    let status = ws.run(&["status", "googlebooks-sample"]);
    status.expect_code(0);
    assert!(
        status
            .stdout()
            .contains("preprocess[slice=zz]: stale (input changed:"),
        "{}",
        status.stdout()
    );
    let run = ws.run(&["run", "googlebooks-sample", "--quiet"]);
    run.expect_code(2);
    assert!(
        run.stderr().contains("changed since it was pinned"),
        "{}",
        run.stderr()
    );
}
