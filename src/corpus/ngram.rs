//! Google Books Ngram v2 files (`ngram TAB year TAB match_count TAB volume_count`), read
//! straight from the `.gz` stream and reduced to per-year unigram tallies and per-year
//! window-weighted pair counts ([`SliceCounts`]); slices reduced separately merge by addition.
//!
//! Token rules (the paper is silent; these are the defaults of `[data.googlebooks]`):
//! - `_START_` and `_END_` are sentence markers, never words. Tokens without a letter, or with a
//!   digit, are not words (punctuation, numbers); the words of an n-gram are closed up, as the
//!   State of the Union text is after its punctuation is removed.
//! - v2 files hold every n-gram untagged with its full counts *and* in POS-tagged variants
//!   (`ZZ_NOUN command_NOUN ._. _END_`) whose counts are a breakdown of the same occurrences.
//!   `pos = "untagged"` therefore skips any n-gram with a tagged token (`word_NOUN`) or a pure
//!   tag (`_NOUN_`); `pos = "tagged"` keeps only those, with words `word_NOUN` and pure tags as
//!   non-words.
//! - Case is kept by default (the paper's word-aging table queries "DNA" in capitals);
//!   `case = "lower"` folds it.
//! - Pairs: with `pairs = "first"` only the pairs of the n-gram's first token are counted, so in
//!   running text every pair of words at most n − 1 apart is counted exactly once — in the
//!   n-gram that starts at its left word (an n-gram that does not start with a word adds no
//!   pairs). `pairs = "all"` counts every pair of the n-gram, which counts a pair k apart in up
//!   to n − k overlapping n-grams. Either way a pair with k words between gets
//!   max(0, 1 − k/c_max) × match_count, in both orders, as in [`super::counts`].
//! - Unigram tallies count a word at every position of every n-gram (× match_count), so that a
//!   subset of slices still sees the words around its prefixes; that is ~n times the running-text
//!   count, a per-year factor that the vocabulary's per-year normalisation makes harmless.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::emit::npy;
use crate::error::{Error, Result};

/// The POS tags of the v2 files (`_.` tags punctuation).
pub const TAGS: &[&str] = &[
    "NOUN", "VERB", "ADJ", "ADV", "PRON", "DET", "ADP", "NUM", "CONJ", "PRT", "X", ".",
];

/// How case is treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Case {
    Keep,
    Lower,
}

/// Which of the tagged and untagged variants of an n-gram is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PosMode {
    Untagged,
    Tagged,
}

/// Which pairs of an n-gram are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PairMode {
    First,
    All,
}

/// Everything the reduction of a slice depends on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReduceOptions {
    /// c_max of the window weights.
    pub window: usize,
    pub first_year: i32,
    pub last_year: i32,
    pub case: Case,
    pub pos: PosMode,
    pub pairs: PairMode,
    /// Largest tolerated fraction of malformed lines.
    pub max_malformed: f64,
    /// Tokens per n-gram of the slice (`None`: any); a line with another count is malformed.
    pub n: Option<usize>,
}

/// One token of an n-gram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token<'a> {
    /// An untagged word.
    Word(&'a str),
    /// `word_TAG`.
    Tagged(&'a str, &'a str),
    /// `_TAG_`: any word of that class.
    Tag(&'a str),
    Start,
    End,
    /// Punctuation, numbers, anything without a letter.
    Other,
}

fn is_word(text: &str) -> bool {
    text.chars().any(char::is_alphabetic) && !text.chars().any(|c| c.is_ascii_digit())
}

/// Classifies one space-separated token of a v2 n-gram.
pub fn classify(token: &str) -> Token<'_> {
    match token {
        "_START_" => return Token::Start,
        "_END_" => return Token::End,
        _ => {}
    }
    if let Some(inner) = token
        .strip_prefix('_')
        .and_then(|t| t.strip_suffix('_'))
        .filter(|t| TAGS.contains(t))
    {
        return Token::Tag(inner);
    }
    if let Some(cut) = token.rfind('_')
        && cut > 0
        && TAGS.contains(&&token[cut + 1..])
    {
        return Token::Tagged(&token[..cut], &token[cut + 1..]);
    }
    if is_word(token) {
        Token::Word(token)
    } else {
        Token::Other
    }
}

/// One parsed line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line<'a> {
    pub ngram: &'a [u8],
    pub year: i32,
    pub match_count: u64,
    pub volume_count: u64,
}

/// Why a line was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// Not exactly four TAB-separated fields (the number found).
    Fields(usize),
    EmptyNgram,
    /// Another number of tokens than the slice's n (found, expected).
    Order(usize, usize),
    Year,
    MatchCount,
    VolumeCount,
    NotUtf8,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Malformed::Fields(n) => write!(f, "{n} TAB-separated fields instead of 4"),
            Malformed::EmptyNgram => write!(f, "empty n-gram"),
            Malformed::Order(found, n) => write!(f, "{found} tokens in a {n}-gram slice"),
            Malformed::Year => write!(f, "year is not an integer"),
            Malformed::MatchCount => write!(f, "match_count is not a positive integer"),
            Malformed::VolumeCount => write!(f, "volume_count is not a positive integer"),
            Malformed::NotUtf8 => write!(f, "n-gram is not UTF-8"),
        }
    }
}

fn parse_unsigned(field: &[u8]) -> Option<u64> {
    if field.is_empty() || field.len() > 19 {
        return None;
    }
    field.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
    })
}

fn parse_year(field: &[u8]) -> Option<i32> {
    let (negative, digits) = match field.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, field),
    };
    let value = i32::try_from(parse_unsigned(digits).filter(|_| digits.len() <= 6)?).ok()?;
    Some(if negative { -value } else { value })
}

/// Parses one line (without its newline; a trailing `\r` is tolerated). The three numeric
/// fields are found from the right, so the n-gram is everything before them.
pub fn parse_line(line: &[u8]) -> std::result::Result<Line<'_>, Malformed> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut rest = line;
    let mut numbers = [&line[..0]; 3];
    for k in (0..3).rev() {
        let Some(tab) = memchr::memrchr(b'\t', rest) else {
            return Err(Malformed::Fields(3 - k));
        };
        numbers[k] = &rest[tab + 1..];
        rest = &rest[..tab];
    }
    if memchr::memchr(b'\t', rest).is_some() {
        return Err(Malformed::Fields(
            4 + memchr::memchr_iter(b'\t', rest).count(),
        ));
    }
    if rest.iter().all(|&b| b == b' ') {
        return Err(Malformed::EmptyNgram);
    }
    let year = parse_year(numbers[0]).ok_or(Malformed::Year)?;
    let match_count = parse_unsigned(numbers[1])
        .filter(|&c| c > 0)
        .ok_or(Malformed::MatchCount)?;
    let volume_count = parse_unsigned(numbers[2])
        .filter(|&c| c > 0)
        .ok_or(Malformed::VolumeCount)?;
    Ok(Line {
        ngram: rest,
        year,
        match_count,
        volume_count,
    })
}

/// The words of an n-gram under `options` (closed up, case applied), and whether its first
/// token is a word; `None` when the n-gram is the other POS variant and is skipped.
pub fn ngram_words<'a>(
    ngram: &'a str,
    options: &ReduceOptions,
) -> Option<(Vec<Cow<'a, str>>, bool)> {
    let tokens: Vec<Token<'_>> = ngram
        .split(' ')
        .filter(|t| !t.is_empty())
        .map(classify)
        .collect();
    let tagged = tokens
        .iter()
        .any(|t| matches!(t, Token::Tagged(..) | Token::Tag(_)));
    let fold = |w: &'a str| -> Cow<'a, str> {
        match options.case {
            Case::Lower if w.chars().any(char::is_uppercase) => Cow::Owned(w.to_lowercase()),
            _ => Cow::Borrowed(w),
        }
    };
    let words_of = |t: &Token<'a>| -> Option<Cow<'a, str>> {
        match (*t, options.pos) {
            (Token::Word(w), PosMode::Untagged) => Some(fold(w)),
            (Token::Tagged(w, tag), PosMode::Tagged) if tag != "." && is_word(w) => {
                Some(Cow::Owned(format!("{}_{tag}", fold(w))))
            }
            _ => None,
        }
    };
    let keep = match options.pos {
        PosMode::Untagged => !tagged,
        // A tagged variant has every token tagged except the sentence markers.
        PosMode::Tagged => tokens.iter().all(|t| {
            matches!(
                t,
                Token::Tagged(..) | Token::Tag(_) | Token::Start | Token::End
            )
        }),
    };
    if !keep {
        return None;
    }
    let starts_with_word = tokens.first().and_then(words_of).is_some();
    Some((
        tokens.iter().filter_map(words_of).collect(),
        starts_with_word,
    ))
}

/// The weighted pairs of one n-gram's words: (left index, right index, weight) with each
/// unordered pair once; callers add both orders.
pub fn ngram_pairs(
    words: usize,
    starts_with_word: bool,
    options: &ReduceOptions,
) -> Vec<(usize, usize, f64)> {
    let mut pairs = Vec::new();
    let lefts = match options.pairs {
        PairMode::First if starts_with_word => 0..words.min(1),
        PairMode::First => 0..0,
        PairMode::All => 0..words,
    };
    for a in lefts {
        for b in a + 1..words {
            let between = b - a - 1;
            let weight = 1.0 - between as f64 / options.window as f64;
            if weight > 0.0 {
                pairs.push((a, b, weight));
            }
        }
    }
    pairs
}

/// What reading a slice met.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SliceStats {
    pub lines: u64,
    /// Distinct n-grams (runs of consecutive lines with the same n-gram).
    pub ngrams: u64,
    pub malformed: u64,
    /// Line numbers (1-based) and reasons of the first malformed lines.
    pub first_malformed: Vec<(u64, String)>,
    /// Lines of the POS variant not read.
    pub skipped_variant: u64,
    pub skipped_years: u64,
    /// Decompressed bytes.
    pub text_bytes: u64,
    pub compressed_bytes: u64,
    /// sha256 of the compressed file as read.
    pub sha256: String,
    pub seconds: f64,
}

impl SliceStats {
    pub fn megabytes_per_second(&self) -> f64 {
        self.text_bytes as f64 / 1e6 / self.seconds.max(1e-9)
    }
}

/// Per-year tallies and pair counts of a slice (or of merged slices), words interned.
#[derive(Clone, Debug, Default)]
pub struct SliceCounts {
    pub words: Vec<String>,
    /// (word, year) → occurrences × match_count, sorted by key, keys distinct.
    pub unigram: Vec<((u32, i32), f64)>,
    /// (word, context, year) → window-weighted match_count, both orders, sorted, distinct.
    pub pairs: Vec<((u32, u32, i32), f64)>,
    /// year → lines read.
    pub lines_by_year: BTreeMap<i32, u64>,
}

/// Streams the bytes of a reader, counting them and hashing them with sha256.
struct HashingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
    bytes: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Years per accumulator block: the lines of one n-gram are runs of consecutive years, so one
/// hash probe serves up to eight of them (one cache line of counts).
const BLOCK: i32 = 8;

type Block = [u64; BLOCK as usize];

/// The current n-gram: its interned words and pairs, and the counts of its lines so far.
#[derive(Default)]
struct Current {
    text: Vec<u8>,
    skipped: bool,
    ids: Vec<u32>,
    /// (word id, context id, weight in units of 1/c_max), both orders.
    pairs: Vec<(u32, u32, u64)>,
    /// (year block, match counts of its years) of the lines read so far.
    blocks: Vec<(i32, Block)>,
}

/// The per-slice reduction, fed line by line. Counts are kept as integers — unigram counts in
/// occurrences, pair counts in units of 1/c_max — so sums are exact and independent of order.
pub struct Reducer<'o> {
    options: &'o ReduceOptions,
    interned: FxHashMap<String, u32>,
    words: Vec<String>,
    unigram: FxHashMap<(u32, i32), Block>,
    pairs: FxHashMap<(u32, u32, i32), Block>,
    /// Lines read per year, from `first_year`.
    lines_by_year: Vec<u64>,
    current: Current,
    pub stats: SliceStats,
}

impl<'o> Reducer<'o> {
    pub fn new(options: &'o ReduceOptions) -> Self {
        let years = (options.last_year - options.first_year + 1).max(0) as usize;
        Self {
            options,
            interned: FxHashMap::default(),
            words: Vec::new(),
            unigram: FxHashMap::default(),
            pairs: FxHashMap::default(),
            lines_by_year: vec![0; years],
            current: Current::default(),
            stats: SliceStats::default(),
        }
    }

    fn intern(&mut self, word: Cow<'_, str>) -> u32 {
        if let Some(&id) = self.interned.get(word.as_ref()) {
            return id;
        }
        let id = self.words.len() as u32;
        let word = word.into_owned();
        self.words.push(word.clone());
        self.interned.insert(word, id);
        id
    }

    /// Adds the finished n-gram's year blocks to the tallies.
    fn flush(&mut self) {
        let current = &mut self.current;
        for (block, counts) in current.blocks.drain(..) {
            for &id in &current.ids {
                let cell = self
                    .unigram
                    .entry((id, block))
                    .or_insert([0; BLOCK as usize]);
                for (c, n) in cell.iter_mut().zip(&counts) {
                    *c += n;
                }
            }
            for &(i, j, weight) in &current.pairs {
                let cell = self
                    .pairs
                    .entry((i, j, block))
                    .or_insert([0; BLOCK as usize]);
                for (c, n) in cell.iter_mut().zip(&counts) {
                    *c += n * weight;
                }
            }
        }
    }

    fn start_ngram(&mut self, text: &[u8]) -> std::result::Result<(), Malformed> {
        self.flush();
        self.stats.ngrams += 1;
        self.current.text.clear();
        self.current.text.extend_from_slice(text);
        self.current.ids.clear();
        self.current.pairs.clear();
        let text = std::str::from_utf8(text).map_err(|_| Malformed::NotUtf8)?;
        if let Some(n) = self.options.n {
            let found = text.split(' ').filter(|t| !t.is_empty()).count();
            if found != n {
                return Err(Malformed::Order(found, n));
            }
        }
        let Some((words, starts_with_word)) = ngram_words(text, self.options) else {
            self.current.skipped = true;
            return Ok(());
        };
        self.current.skipped = false;
        let mut ids = std::mem::take(&mut self.current.ids);
        ids.extend(words.into_iter().map(|w| self.intern(w)));
        let window = self.options.window;
        for (a, b, weight) in ngram_pairs(ids.len(), starts_with_word, self.options) {
            let units = (weight * window as f64).round() as u64;
            let (i, j) = (ids[a].min(ids[b]), ids[a].max(ids[b]));
            self.current.pairs.push((i, j, units));
        }
        self.current.ids = ids;
        Ok(())
    }

    /// Adds one line (1-based `number` for error reports).
    pub fn add_line(&mut self, number: u64, raw: &[u8]) {
        self.stats.lines += 1;
        let line = match parse_line(raw) {
            Ok(line) => line,
            Err(reason) => return self.malformed(number, reason),
        };
        if (line.ngram != self.current.text.as_slice() || self.stats.ngrams == 0)
            && let Err(reason) = self.start_ngram(line.ngram)
        {
            // Forget the text so that the next line with it is parsed (and refused) again.
            self.current.text.clear();
            self.current.skipped = true;
            return self.malformed(number, reason);
        }
        if self.current.skipped {
            self.stats.skipped_variant += 1;
            return;
        }
        let year = line.year;
        if year < self.options.first_year || year > self.options.last_year {
            self.stats.skipped_years += 1;
            return;
        }
        self.lines_by_year[(year - self.options.first_year) as usize] += 1;
        let block = year.div_euclid(BLOCK);
        let slot = year.rem_euclid(BLOCK) as usize;
        let blocks = &mut self.current.blocks;
        match blocks.iter_mut().rev().find(|(b, _)| *b == block) {
            Some((_, counts)) => counts[slot] += line.match_count,
            None => {
                let mut counts = [0; BLOCK as usize];
                counts[slot] = line.match_count;
                blocks.push((block, counts));
            }
        }
    }

    fn malformed(&mut self, number: u64, reason: Malformed) {
        self.stats.malformed += 1;
        if self.stats.first_malformed.len() < 5 {
            self.stats
                .first_malformed
                .push((number, reason.to_string()));
        }
    }

    /// The counts, sorted.
    pub fn finish(mut self) -> (SliceCounts, SliceStats) {
        self.flush();
        let scale = 1.0 / self.options.window as f64;
        let words = self.words.len();
        let unigram_blocks: Vec<((u32, i32), Block)> = self.unigram.into_iter().collect();
        let unigram = expand_sorted(
            unigram_blocks,
            |&(id, _)| id,
            words,
            |(id, block), k| (id, block * BLOCK + k),
            1.0,
        );
        // Both orders of every unordered pair; (i, i) gets both, as in `counts::add_sentence`.
        let mut pair_blocks: Vec<((u32, u32, i32), Block)> =
            Vec::with_capacity(2 * self.pairs.len());
        for ((i, j, block), counts) in self.pairs {
            if i == j {
                pair_blocks.push(((i, i, block), counts.map(|c| 2 * c)));
            } else {
                pair_blocks.push(((i, j, block), counts));
                pair_blocks.push(((j, i, block), counts));
            }
        }
        let pairs = expand_sorted(
            pair_blocks,
            |&(i, _, _)| i,
            words,
            |(i, j, block), k| (i, j, block * BLOCK + k),
            scale,
        );
        let first = self.options.first_year;
        (
            SliceCounts {
                words: self.words,
                unigram,
                pairs,
                lines_by_year: self
                    .lines_by_year
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .map(|(k, &n)| (first + k as i32, n))
                    .collect(),
            },
            self.stats,
        )
    }
}

/// The non-zero entries of year blocks, `scale` × count, sorted by the expanded key.
///
/// The blocks are first distributed by their leading word id (`first`, < `ids`) into buckets
/// of a few thousand — a counting sort, streaming through memory — and each bucket is then
/// sorted where it fits in cache; sorting the whole table at once, or gathering it through a
/// sorted index, spends most of its time waiting for memory.
fn expand_sorted<B: Ord + Copy, K>(
    blocks: Vec<(B, Block)>,
    first: impl Fn(&B) -> u32,
    ids: usize,
    key: impl Fn(B, i32) -> K,
    scale: f64,
) -> Vec<(K, f64)> {
    let ids = ids.max(1);
    let buckets = (blocks.len() / 4096).clamp(1, ids);
    // Monotone in the leading id, so the buckets in order hold the keys in order.
    let bucket_of = |b: &B| first(b) as usize * buckets / ids;
    let mut starts = vec![0usize; buckets + 1];
    for (b, _) in &blocks {
        starts[bucket_of(b) + 1] += 1;
    }
    for k in 0..buckets {
        starts[k + 1] += starts[k];
    }
    let mut next = starts.clone();
    let mut ordered = blocks.clone();
    for block in blocks {
        let slot = &mut next[bucket_of(&block.0)];
        ordered[*slot] = block;
        *slot += 1;
    }
    let cells = ordered
        .iter()
        .map(|(_, counts)| counts.iter().filter(|&&c| c > 0).count())
        .sum();
    let mut out = Vec::with_capacity(cells);
    for k in 0..buckets {
        let bucket = &mut ordered[starts[k]..starts[k + 1]];
        bucket.sort_unstable_by_key(|e| e.0);
        for &(b, counts) in bucket.iter() {
            for (y, &c) in counts.iter().enumerate() {
                if c > 0 {
                    out.push((key(b, y as i32), c as f64 * scale));
                }
            }
        }
    }
    out
}

/// Reduces the v2 file at `path` (gzip if it ends in `.gz`, plain text otherwise), streaming:
/// a second thread reads, hashes and decompresses while this one parses and counts.
/// Fails when the share of malformed lines exceeds `options.max_malformed`, naming the first
/// few line numbers.
pub fn reduce_file(path: &Path, options: &ReduceOptions) -> Result<(SliceCounts, SliceStats)> {
    let clock = std::time::Instant::now();
    let file = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let hashing = HashingReader {
        inner: file,
        hasher: <sha2::Sha256 as sha2::Digest>::new(),
        bytes: 0,
    };
    let gz = path.extension().is_some_and(|e| e == "gz");
    let mut reducer = Reducer::new(options);
    let (text_bytes, hashing) = std::thread::scope(|scope| {
        let (chunks, mut prefetched) = Prefetched::channel();
        let reading = scope.spawn(move || {
            if gz {
                let mut decoder = flate2::read::MultiGzDecoder::new(hashing);
                chunks.pump(&mut decoder);
                decoder.into_inner()
            } else {
                let mut plain = hashing;
                chunks.pump(&mut plain);
                plain
            }
        });
        let fed = feed(&mut reducer, &mut prefetched, path);
        // Dropping the receiver stops a reader that is still going (after an error here).
        drop(prefetched);
        let hashing = reading.join().map_err(|_| {
            Error::Other(format!(
                "reading {}: the reader thread panicked",
                path.display()
            ))
        })?;
        fed.map(|bytes| (bytes, hashing))
    })?;
    let (counts, mut stats) = reducer.finish();
    stats.text_bytes = text_bytes;
    stats.compressed_bytes = hashing.bytes;
    stats.sha256 = crate::data::registry::hex(&sha2::Digest::finalize(hashing.hasher));
    stats.seconds = clock.elapsed().as_secs_f64();
    let share = stats.malformed as f64 / stats.lines.max(1) as f64;
    if stats.malformed > 0 && share > options.max_malformed {
        let examples: Vec<String> = stats
            .first_malformed
            .iter()
            .map(|(n, why)| format!("line {n}: {why}"))
            .collect();
        return Err(Error::Other(format!(
            "{}: {} of {} lines are malformed ({:.3} %, above max_malformed = {}); {}",
            path.display(),
            stats.malformed,
            stats.lines,
            100.0 * share,
            options.max_malformed,
            examples.join("; ")
        )));
    }
    Ok((counts, stats))
}

/// Bytes per chunk handed from the reading thread to the parsing one, and chunks in flight.
const CHUNK: usize = 1 << 20;
const CHUNKS_IN_FLIGHT: usize = 4;

/// The reading end: fills chunks from a reader and sends them, taking emptied ones back.
struct Chunks {
    full: std::sync::mpsc::SyncSender<std::io::Result<Vec<u8>>>,
    empty: std::sync::mpsc::Receiver<Vec<u8>>,
}

impl Chunks {
    /// Sends `reader`'s bytes in chunks until its end (an empty chunk), an error (sent on), or
    /// the parsing end hanging up.
    fn pump(&self, reader: &mut dyn Read) {
        loop {
            let mut chunk = self.empty.try_recv().unwrap_or_default();
            chunk.resize(CHUNK, 0);
            let mut filled = 0;
            let outcome = loop {
                match reader.read(&mut chunk[filled..]) {
                    Ok(0) => break Ok(()),
                    Ok(n) => {
                        filled += n;
                        if filled == CHUNK {
                            break Ok(());
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            };
            chunk.truncate(filled);
            let done = filled == 0 || outcome.is_err();
            if self.full.send(outcome.map(|()| chunk)).is_err() || done {
                return;
            }
        }
    }
}

/// The parsing end: a reader over the chunks the reading thread sends.
struct Prefetched {
    full: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    empty: std::sync::mpsc::Sender<Vec<u8>>,
    current: Vec<u8>,
    offset: usize,
    ended: bool,
}

impl Prefetched {
    fn channel() -> (Chunks, Self) {
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel(CHUNKS_IN_FLIGHT);
        let (empty_tx, empty_rx) = std::sync::mpsc::channel();
        (
            Chunks {
                full: full_tx,
                empty: empty_rx,
            },
            Self {
                full: full_rx,
                empty: empty_tx,
                current: Vec::new(),
                offset: 0,
                ended: false,
            },
        )
    }
}

impl Read for Prefetched {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.offset == self.current.len() && !self.ended {
            let next = match self.full.recv() {
                Ok(chunk) => chunk?,
                Err(_) => {
                    return Err(std::io::Error::other("the reading thread stopped early"));
                }
            };
            self.ended = next.is_empty();
            let used = std::mem::replace(&mut self.current, next);
            // The reading thread may have ended; a chunk it will not take back is just freed.
            let _ = self.empty.send(used);
            self.offset = 0;
        }
        let n = buf.len().min(self.current.len() - self.offset);
        buf[..n].copy_from_slice(&self.current[self.offset..self.offset + n]);
        self.offset += n;
        Ok(n)
    }
}

/// Feeds every line of `reader` to `reducer`; returns the bytes read. Lines are handed over
/// from the read buffer itself; only a line cut by the buffer's end is copied.
fn feed(reducer: &mut Reducer<'_>, reader: &mut dyn Read, path: &Path) -> Result<u64> {
    let mut buffer = vec![0u8; 1 << 18];
    let mut filled = 0usize;
    let mut number = 0u64;
    let mut bytes = 0u64;
    loop {
        if filled == buffer.len() {
            // A line longer than the buffer: grow it.
            buffer.resize(2 * buffer.len(), 0);
        }
        let n = loop {
            match reader.read(&mut buffer[filled..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("reading", path, e)),
            }
        };
        bytes += n as u64;
        let end = filled + n;
        if n == 0 {
            if end > 0 {
                number += 1;
                reducer.add_line(number, &buffer[..end]);
            }
            return Ok(bytes);
        }
        let mut start = 0;
        for newline in memchr::memchr_iter(b'\n', &buffer[filled..end]) {
            let stop = filled + newline;
            number += 1;
            reducer.add_line(number, &buffer[start..stop]);
            start = stop + 1;
        }
        buffer.copy_within(start..end, 0);
        filled = end - start;
    }
}

impl SliceCounts {
    /// Adds `other` into `self` (words re-interned by text).
    pub fn merge(&mut self, other: &SliceCounts) {
        let mut index: FxHashMap<&str, u32> = FxHashMap::default();
        for (id, w) in self.words.iter().enumerate() {
            index.insert(w.as_str(), id as u32);
        }
        let mut new_words = Vec::new();
        let remap: Vec<u32> = other
            .words
            .iter()
            .map(|w| match index.get(w.as_str()) {
                Some(&id) => id,
                None => {
                    let id = (self.words.len() + new_words.len()) as u32;
                    new_words.push(w.clone());
                    index.insert(w.as_str(), id);
                    id
                }
            })
            .collect();
        drop(index);
        self.words.extend(new_words);
        self.unigram.extend(
            other
                .unigram
                .iter()
                .map(|&((w, year), c)| ((remap[w as usize], year), c)),
        );
        coalesce(&mut self.unigram);
        self.pairs.extend(
            other
                .pairs
                .iter()
                .map(|&((i, j, year), c)| ((remap[i as usize], remap[j as usize], year), c)),
        );
        coalesce(&mut self.pairs);
        for (&year, &n) in &other.lines_by_year {
            *self.lines_by_year.entry(year).or_insert(0) += n;
        }
    }

    /// Writes the counts as `.npy` arrays and a word list into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        use ndarray::Array1;
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating folder", dir, e))?;
        let mut words = String::new();
        for w in &self.words {
            words.push_str(w);
            words.push('\n');
        }
        crate::fsutil::write_atomic(&dir.join("words.txt"), words.as_bytes())?;
        npy::write(
            &dir.join("unigram.year.npy"),
            &self.unigram.iter().map(|e| e.0.1).collect::<Array1<i32>>(),
        )?;
        npy::write(
            &dir.join("unigram.word.npy"),
            &self.unigram.iter().map(|e| e.0.0).collect::<Array1<u32>>(),
        )?;
        npy::write(
            &dir.join("unigram.count.npy"),
            &self.unigram.iter().map(|e| e.1).collect::<Array1<f64>>(),
        )?;
        npy::write(
            &dir.join("pairs.year.npy"),
            &self.pairs.iter().map(|e| e.0.2).collect::<Array1<i32>>(),
        )?;
        npy::write(
            &dir.join("pairs.word.npy"),
            &self.pairs.iter().map(|e| e.0.0).collect::<Array1<u32>>(),
        )?;
        npy::write(
            &dir.join("pairs.context.npy"),
            &self.pairs.iter().map(|e| e.0.1).collect::<Array1<u32>>(),
        )?;
        npy::write(
            &dir.join("pairs.weight.npy"),
            &self.pairs.iter().map(|e| e.1).collect::<Array1<f64>>(),
        )?;
        npy::write(
            &dir.join("lines.year.npy"),
            &self.lines_by_year.keys().copied().collect::<Array1<i32>>(),
        )?;
        npy::write(
            &dir.join("lines.count.npy"),
            &self
                .lines_by_year
                .values()
                .map(|&n| n as i64)
                .collect::<Array1<i64>>(),
        )
    }

    /// Reads counts written by [`SliceCounts::write`].
    pub fn read(dir: &Path) -> Result<Self> {
        use ndarray::Array1;
        let path = dir.join("words.txt");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io("reading", &path, e))?;
        let words: Vec<String> = text.lines().map(str::to_string).collect();
        let u_year: Array1<i32> = npy::read_as(&dir.join("unigram.year.npy"))?;
        let u_word: Array1<u32> = npy::read_as(&dir.join("unigram.word.npy"))?;
        let u_count: Array1<f64> = npy::read_as(&dir.join("unigram.count.npy"))?;
        let p_year: Array1<i32> = npy::read_as(&dir.join("pairs.year.npy"))?;
        let p_word: Array1<u32> = npy::read_as(&dir.join("pairs.word.npy"))?;
        let p_context: Array1<u32> = npy::read_as(&dir.join("pairs.context.npy"))?;
        let p_weight: Array1<f64> = npy::read_as(&dir.join("pairs.weight.npy"))?;
        let l_year: Array1<i32> = npy::read_as(&dir.join("lines.year.npy"))?;
        let l_count: Array1<i64> = npy::read_as(&dir.join("lines.count.npy"))?;
        let n = words.len() as u32;
        let consistent = u_year.len() == u_word.len()
            && u_word.len() == u_count.len()
            && p_year.len() == p_word.len()
            && p_word.len() == p_context.len()
            && p_context.len() == p_weight.len()
            && l_year.len() == l_count.len()
            && u_word
                .iter()
                .chain(&p_word)
                .chain(&p_context)
                .all(|&w| w < n)
            && (1..u_word.len()).all(|k| (u_word[k - 1], u_year[k - 1]) < (u_word[k], u_year[k]))
            && (1..p_word.len()).all(|k| {
                (p_word[k - 1], p_context[k - 1], p_year[k - 1])
                    < (p_word[k], p_context[k], p_year[k])
            });
        if !consistent {
            return Err(Error::Other(format!(
                "{}: the slice count arrays disagree; rerun the preprocess stage",
                dir.display()
            )));
        }
        Ok(Self {
            words,
            unigram: (0..u_year.len())
                .map(|k| ((u_word[k], u_year[k]), u_count[k]))
                .collect(),
            pairs: (0..p_year.len())
                .map(|k| ((p_word[k], p_context[k], p_year[k]), p_weight[k]))
                .collect(),
            lines_by_year: (0..l_year.len())
                .map(|k| (l_year[k], l_count[k] as u64))
                .collect(),
        })
    }

    /// The counts with words as text, for comparisons independent of interning order.
    #[allow(clippy::type_complexity)]
    pub fn by_text(&self) -> (BTreeMap<(&str, i32), f64>, BTreeMap<(&str, &str, i32), f64>) {
        let w = |id: u32| self.words[id as usize].as_str();
        (
            self.unigram
                .iter()
                .map(|&((i, y), c)| ((w(i), y), c))
                .collect(),
            self.pairs
                .iter()
                .map(|&((i, j, y), c)| ((w(i), w(j), y), c))
                .collect(),
        )
    }
}

/// Sorts `entries` by key and sums the values of equal keys.
fn coalesce<K: Ord + Copy>(entries: &mut Vec<(K, f64)>) {
    entries.sort_unstable_by_key(|e| e.0);
    let mut out: Vec<(K, f64)> = Vec::with_capacity(entries.len());
    for &(key, value) in entries.iter() {
        match out.last_mut() {
            Some(last) if last.0 == key => last.1 += value,
            _ => out.push((key, value)),
        }
    }
    *entries = out;
}

/// The total-counts file: year → match_count. Its one line starts with " \t", holds
/// `year,match_count,page_count,volume_count` records separated by TABs and ends with a TAB.
pub fn read_total_counts(path: &Path) -> Result<BTreeMap<i32, f64>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
    let mut totals = BTreeMap::new();
    for (k, record) in text.split(['\t', '\n']).map(str::trim).enumerate() {
        if record.is_empty() {
            continue;
        }
        let fields: Vec<&str> = record.split(',').collect();
        let parsed = (fields.len() == 4)
            .then(|| {
                Some((
                    fields[0].parse::<i32>().ok()?,
                    fields[1].parse::<u64>().ok()?,
                ))
            })
            .flatten();
        let Some((year, count)) = parsed else {
            return Err(Error::Other(format!(
                "{}: record {} ({record:?}) is not year,match_count,page_count,volume_count",
                path.display(),
                k + 1
            )));
        };
        totals.insert(year, count as f64);
    }
    if totals.is_empty() {
        return Err(Error::Other(format!("{}: no year records", path.display())));
    }
    Ok(totals)
}

/// Generated slices in the exact v2 format, for tests and benchmarks: Zipf-distributed words,
/// some capitalised, punctuation and `_END_` markers, every n-gram also in its fully tagged
/// variant, and runs of consecutive years per n-gram.
pub mod synthetic {
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const PUNCTUATION: &[&str] = &[",", ".", ";", ")", "(", "'", "--"];

    fn word(rank: usize) -> String {
        // Distinct pronounceable words, longer for rarer ranks.
        const SYLLABLES: &[&str] = &[
            "ta", "ne", "ri", "so", "ul", "ma", "ke", "do", "pi", "ve", "lo", "gu", "sha", "zz",
        ];
        let mut r = rank + 1;
        let mut w = String::new();
        while r > 0 {
            w.push_str(SYLLABLES[r % SYLLABLES.len()]);
            r /= SYLLABLES.len();
        }
        w
    }

    /// A slice of `ngrams` distinct n-grams of order `n` (years `first..=last`), as text. Like
    /// a real slice, whose n-grams all start with the slice's two-letter prefix, the first word
    /// comes from a small set (100 words); the others follow the Zipf law over 5000 words.
    pub fn slice(seed: u64, n: usize, ngrams: usize, first: i32, last: i32) -> String {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let vocabulary = 5000usize;
        let zipf = |rng: &mut ChaCha8Rng| -> usize {
            // Inverse-CDF of a Zipf(1) law over the vocabulary, approximately.
            let u: f64 = rng.random();
            ((vocabulary as f64).powf(u) as usize).saturating_sub(1)
        };
        let starters: Vec<usize> = (0..100).map(|_| zipf(&mut rng)).collect();
        let mut out = String::new();
        let mut seen = std::collections::HashSet::new();
        while seen.len() < ngrams {
            let mut tokens: Vec<(String, &str)> = Vec::with_capacity(n);
            for position in 0..n {
                let roll: f64 = rng.random();
                if position == n - 1 && roll < 0.1 {
                    tokens.push(("_END_".into(), ""));
                } else if roll < 0.2 {
                    let p = PUNCTUATION[rng.random_range(0..PUNCTUATION.len())];
                    tokens.push((p.into(), "."));
                } else {
                    let rank = if position == 0 {
                        starters[rng.random_range(0..starters.len())]
                    } else {
                        zipf(&mut rng)
                    };
                    let mut w = word(rank);
                    if rng.random::<f64>() < 0.1 {
                        w[..1].make_ascii_uppercase();
                    }
                    let tag = ["NOUN", "VERB", "ADJ", "DET"][rng.random_range(0..4)];
                    tokens.push((w, tag));
                }
            }
            let plain: Vec<&str> = tokens.iter().map(|(t, _)| t.as_str()).collect();
            let plain = plain.join(" ");
            if !seen.insert(plain.clone()) {
                continue;
            }
            let tagged: Vec<String> = tokens
                .iter()
                .map(|(t, tag)| {
                    if tag.is_empty() {
                        t.clone()
                    } else {
                        format!("{t}_{tag}")
                    }
                })
                .collect();
            let start = rng.random_range(first..=last);
            let span = rng.random_range(1..=(last - start + 1).min(40));
            for text in [plain, tagged.join(" ")] {
                for year in start..start + span {
                    let volumes: u64 = rng.random_range(1..20);
                    let matches = volumes + rng.random_range(0..60u64);
                    out.push_str(&format!("{text}\t{year}\t{matches}\t{volumes}\n"));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    fn options(pairs: PairMode) -> ReduceOptions {
        ReduceOptions {
            window: 4,
            first_year: 1800,
            last_year: 2008,
            case: Case::Keep,
            pos: PosMode::Untagged,
            pairs,
            max_malformed: 0.5,
            n: None,
        }
    }

    #[test]
    fn tokens_are_classified_with_every_marker() {
        assert_eq!(classify("_START_"), Token::Start);
        assert_eq!(classify("_END_"), Token::End);
        assert_eq!(classify("_NOUN_"), Token::Tag("NOUN"));
        assert_eq!(classify("_._"), Token::Tag("."));
        assert_eq!(classify("ZZ_NOUN"), Token::Tagged("ZZ", "NOUN"));
        assert_eq!(classify("Co._NOUN"), Token::Tagged("Co.", "NOUN"));
        assert_eq!(classify("._."), Token::Tagged(".", "."));
        assert_eq!(classify("snake_case"), Token::Word("snake_case"));
        // Not a tag (those are `_NOUN_`): an odd word.
        assert_eq!(classify("_NOUN"), Token::Word("_NOUN"));
        assert_eq!(classify("DNA"), Token::Word("DNA"));
        assert_eq!(classify("'s"), Token::Word("'s"));
        assert_eq!(classify("1800"), Token::Other);
        assert_eq!(classify("B12"), Token::Other);
        assert_eq!(classify("..."), Token::Other);
    }

    #[test]
    fn lines_parse_and_malformed_lines_say_why() {
        let line = parse_line(b"ZZ Top 's \"\t1991\t12\t7").unwrap();
        assert_eq!(line.ngram, b"ZZ Top 's \"");
        assert_eq!(
            (line.year, line.match_count, line.volume_count),
            (1991, 12, 7)
        );
        assert_eq!(parse_line(b"a b\t1991\t3\t2\r").unwrap().volume_count, 2);
        let bad = |text: &[u8]| parse_line(text).unwrap_err();
        assert_eq!(bad(b"a b\t1991\t3"), Malformed::Fields(3));
        assert_eq!(bad(b"a\tb\t1991\t3\t2"), Malformed::Fields(5));
        assert_eq!(bad(b""), Malformed::Fields(1));
        assert_eq!(bad(b"  \t1991\t3\t2"), Malformed::EmptyNgram);
        assert_eq!(bad(b"a b\tyear\t3\t2"), Malformed::Year);
        assert_eq!(bad(b"a b\t1991\t0\t2"), Malformed::MatchCount);
        assert_eq!(bad(b"a b\t1991\t-3\t2"), Malformed::MatchCount);
        assert_eq!(bad(b"a b\t1991\t3\t"), Malformed::VolumeCount);
        assert_eq!(
            bad(b"a b\t1991\t99999999999999999999\t2"),
            Malformed::MatchCount
        );
    }

    #[test]
    fn pos_variants_case_and_markers() {
        let o = options(PairMode::First);
        fn words<'a>(text: &'a str, o: &ReduceOptions) -> Option<(Vec<Cow<'a, str>>, bool)> {
            ngram_words(text, o)
        }
        assert_eq!(
            words("ZZ Top 's \"", &o),
            Some((vec!["ZZ".into(), "Top".into(), "'s".into()], true))
        );
        // The tagged variant of the same n-gram is skipped, as is a pure tag.
        assert_eq!(words("ZZ_NOUN Top_NOUN 's_PRT \"_.", &o), None);
        assert_eq!(words("the _NOUN_ of it", &o), None);
        // Sentence markers are not words; an n-gram starting with one starts with no word.
        assert_eq!(
            words("_START_ The car is", &o),
            Some((vec!["The".into(), "car".into(), "is".into()], false))
        );
        assert_eq!(words("zz ) ; _END_", &o), Some((vec!["zz".into()], true)));
        let lower = ReduceOptions {
            case: Case::Lower,
            ..o.clone()
        };
        assert_eq!(words("DNA Test", &lower).unwrap().0, ["dna", "test"]);
        let tagged = ReduceOptions {
            pos: PosMode::Tagged,
            ..o.clone()
        };
        assert_eq!(words("ZZ Top 's \"", &tagged), None);
        assert_eq!(
            words("ZZ_NOUN Top_NOUN 's_PRT \"_.", &tagged),
            Some((
                vec!["ZZ_NOUN".into(), "Top_NOUN".into(), "'s_PRT".into()],
                true
            ))
        );
    }

    /// One 5-gram by hand: words a b c d e at 0…3 words apart.
    #[test]
    fn pair_weights_of_one_five_gram() {
        let reduce = |pairs: PairMode| {
            let o = options(pairs);
            let mut r = Reducer::new(&o);
            r.add_line(1, b"a b c d e\t1900\t8\t3");
            r.finish().0
        };
        let first = reduce(PairMode::First);
        let (_, pairs) = first.by_text();
        let get = |p: &BTreeMap<(&str, &str, i32), f64>, i: &str, j: &str| {
            p.get(&(i, j, 1900)).copied().unwrap_or(0.0)
        };
        // First word with the others: 1, ¾, ½, ¼ (0…3 words between) × match_count 8.
        for (w, weight) in [("b", 1.0), ("c", 0.75), ("d", 0.5), ("e", 0.25)] {
            assert_eq!(get(&pairs, "a", w), 8.0 * weight);
            assert_eq!(get(&pairs, w, "a"), 8.0 * weight);
        }
        assert_eq!(pairs.len(), 8);
        let all = reduce(PairMode::All);
        let (unigram, pairs) = all.by_text();
        assert_eq!(get(&pairs, "b", "c"), 8.0);
        assert_eq!(get(&pairs, "b", "e"), 4.0);
        assert_eq!(get(&pairs, "c", "e"), 6.0);
        assert_eq!(pairs.len(), 20);
        assert_eq!(
            pairs.values().sum::<f64>(),
            2.0 * 8.0 * (4.0 + 3.0 * 0.75 + 2.0 * 0.5 + 0.25)
        );
        // Unigram tallies: every position, × match_count.
        assert_eq!(unigram.get(&("c", 1900)), Some(&8.0));
        assert_eq!(unigram.len(), 5);
        // A repeated word pairs with itself on the diagonal, both orders; the punctuation
        // between is closed up, so the two are adjacent.
        let o = options(PairMode::First);
        let mut r = Reducer::new(&o);
        r.add_line(1, b"zz - zz -\t1990\t3\t1");
        let (diagonal, _) = r.finish();
        let (_, pairs) = diagonal.by_text();
        assert_eq!(pairs.get(&("zz", "zz", 1990)), Some(&(2.0 * 3.0)));
    }

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        use std::io::Write;
        let path = dir.join(name);
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all(text.as_bytes()).unwrap();
        gz.finish().unwrap();
        path
    }

    /// Reducing two slices and merging equals reducing their concatenation; the years outside
    /// the range, the tagged variants and the malformed lines are counted, not added.
    #[test]
    fn merging_two_slices_equals_their_concatenation() {
        let dir = tempfile::tempdir().unwrap();
        let a = synthetic::slice(1, 5, 300, 1790, 2010);
        let b = synthetic::slice(2, 5, 300, 1790, 2010) + "broken line\n";
        let o = options(PairMode::First);
        let (mut merged, sa) = reduce_file(&write(dir.path(), "a.gz", &a), &o).unwrap();
        let (counts_b, sb) = reduce_file(&write(dir.path(), "b.gz", &b), &o).unwrap();
        merged.merge(&counts_b);
        let (whole, sw) = reduce_file(&write(dir.path(), "ab.gz", &(a + &b)), &o).unwrap();
        assert_eq!(merged.by_text(), whole.by_text());
        assert_eq!(merged.lines_by_year, whole.lines_by_year);
        assert_eq!(sw.lines, sa.lines + sb.lines);
        assert_eq!(sb.malformed, 1);
        assert_eq!(sb.first_malformed[0].0, sb.lines);
        assert!(sa.skipped_variant > 0 && sa.skipped_years > 0);
        // Written and read back, the counts are the same.
        merged.write(&dir.path().join("out")).unwrap();
        let back = SliceCounts::read(&dir.path().join("out")).unwrap();
        assert_eq!(back.by_text(), merged.by_text());
    }

    /// The reading thread hands over text in 1 MiB chunks: a slice of several chunks, read
    /// from gzip and as plain text, gives the same counts and the sha256 of the file's bytes;
    /// a truncated gzip file fails naming the file, after the lines before the cut.
    #[test]
    fn slices_of_many_chunks_reduce_alike_and_a_truncated_one_fails() {
        use sha2::Digest;
        let dir = tempfile::tempdir().unwrap();
        let text = synthetic::slice(3, 5, 40_000, 1790, 2010);
        assert!(text.len() > 3 * CHUNK, "{} bytes", text.len());
        let o = options(PairMode::First);
        let gz = write(dir.path(), "big.gz", &text);
        let plain = dir.path().join("big.txt");
        std::fs::write(&plain, &text).unwrap();
        let (from_gz, gz_stats) = reduce_file(&gz, &o).unwrap();
        let (from_plain, plain_stats) = reduce_file(&plain, &o).unwrap();
        assert_eq!(from_gz.by_text(), from_plain.by_text());
        assert_eq!(gz_stats.text_bytes, text.len() as u64);
        assert_eq!(plain_stats.text_bytes, text.len() as u64);
        let bytes = std::fs::read(&gz).unwrap();
        assert_eq!(gz_stats.compressed_bytes, bytes.len() as u64);
        assert_eq!(
            gz_stats.sha256,
            crate::data::registry::hex(&sha2::Sha256::digest(&bytes))
        );
        let cut = dir.path().join("cut.gz");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let err = reduce_file(&cut, &o).unwrap_err().to_string();
        assert!(err.contains("cut.gz"), "{err}");
    }

    /// Regression: a 5-gram line in a 4-gram slice was counted as valid.
    #[test]
    fn a_line_of_another_order_is_malformed() {
        let dir = tempfile::tempdir().unwrap();
        let text = "a b c d\t1900\t1\t1\na b c d e\t1900\t1\t1\n";
        let o = ReduceOptions {
            n: Some(4),
            ..options(PairMode::First)
        };
        let (_, stats) = reduce_file(&write(dir.path(), "o.gz", text), &o).unwrap();
        assert_eq!(stats.malformed, 1);
        assert_eq!(
            stats.first_malformed,
            [(2, "5 tokens in a 4-gram slice".to_string())]
        );
    }

    #[test]
    fn too_many_malformed_lines_fail_naming_the_first_ones() {
        let dir = tempfile::tempdir().unwrap();
        let text = "a b\t1900\t1\t1\nno tabs here\na b\t1901\tx\t1\n";
        let o = ReduceOptions {
            max_malformed: 0.1,
            ..options(PairMode::First)
        };
        let err = reduce_file(&write(dir.path(), "m.gz", text), &o)
            .unwrap_err()
            .to_string();
        assert!(err.contains("2 of 3 lines are malformed"), "{err}");
        assert!(err.contains("line 2: 1 TAB-separated fields"), "{err}");
        assert!(err.contains("line 3: match_count"), "{err}");
    }

    /// Random mutations of real-format lines (bytes flipped, inserted, deleted, tabs and
    /// newlines moved) never panic the reader; malformed lines are only counted.
    #[test]
    fn fuzzed_lines_never_panic() {
        let seed_lines: Vec<Vec<u8>> = synthetic::slice(3, 5, 40, 1800, 2008)
            .lines()
            .map(|l| l.as_bytes().to_vec())
            .chain([b"ZZ_NOUN command_NOUN ._. _END_\t1984\t2\t2".to_vec()])
            .collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let o = options(PairMode::All);
        let mut reducer = Reducer::new(&o);
        let inputs = 100_000u64;
        for number in 1..=inputs {
            let mut line = seed_lines[rng.random_range(0..seed_lines.len())].clone();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..=line.len());
                match rng.random_range(0..4) {
                    0 if at < line.len() => line[at] = rng.random(),
                    1 => line.insert(at, [b'\t', b' ', b'_', 0xff][rng.random_range(0..4)]),
                    2 if at < line.len() => {
                        line.remove(at);
                    }
                    _ => line.truncate(at),
                }
            }
            reducer.add_line(number, &line);
        }
        let (_, stats) = reducer.finish();
        eprintln!(
            "fuzz: {inputs} mutated lines ran without a panic ({} malformed)",
            stats.malformed
        );
        assert_eq!(stats.lines, inputs);
        assert!(stats.malformed > 0 && stats.malformed < inputs);
    }

    #[test]
    fn total_counts_file_is_read_with_its_quirks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.txt");
        std::fs::write(
            &path,
            " \t1505,32059,231,1\t2008,19482936409,108811006,206272\t",
        )
        .unwrap();
        let totals = read_total_counts(&path).unwrap();
        assert_eq!(totals.len(), 2);
        assert_eq!(totals[&2008], 19482936409.0);
        std::fs::write(&path, " \t1505,32059,231\t").unwrap();
        assert!(
            read_total_counts(&path)
                .unwrap_err()
                .to_string()
                .contains("record 2")
        );
    }
}
