//! Text corpora for the dynamic-word-embedding experiments: reading time-stamped documents,
//! cleaning and tokenising them, and building per-step co-occurrence counts ([`counts`]).
//!
//! Tokenisation, decided here once for every corpus: text is lower-cased; a token is a run of
//! letters, with apostrophes kept only between letters ("nation's", "don't"); digits and other
//! symbols separate tokens and are dropped. A sentence ends at '.', '!' or '?', and context
//! windows never cross a sentence end (abbreviations such as "Mr." therefore cut a sentence short,
//! which only loses a few pairs). Cleaning removes bracketed notes "[…]" and audience annotations:
//! parenthesised spans of at most four words that start with a capital letter and end with a
//! full stop inside the parenthesis ("(Applause.)", "(Laughter and applause.)").

pub mod counts;
pub mod ngram;

use std::io::BufRead;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// One dated document. `language` is the corpus's own code ("en", "la", …) where it has one.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Document {
    pub year: Option<i32>,
    pub text: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
}

/// What reading a corpus file cost: decompressed bytes and documents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub bytes: u64,
    pub documents: usize,
}

/// Streams gzip-compressed JSON Lines with at least the fields `year` and `text`, one record at
/// a time, to `each(line number, document)`; never more than one record is held.
pub fn for_each_document(
    path: &Path,
    mut each: impl FnMut(usize, Document) -> Result<()>,
) -> Result<ReadStats> {
    let file = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let mut reader = std::io::BufReader::with_capacity(
        1 << 20,
        flate2::read::GzDecoder::new(std::io::BufReader::with_capacity(1 << 20, file)),
    );
    let mut stats = ReadStats::default();
    let mut line = String::new();
    for number in 1.. {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .map_err(|e| Error::io("reading (gzip JSON Lines)", path, e))?;
        if read == 0 {
            break;
        }
        stats.bytes += read as u64;
        if line.trim().is_empty() {
            continue;
        }
        let document: Document = serde_json::from_str(&line).map_err(|e| {
            Error::Other(format!(
                "{}:{number}: not a document record: {e}",
                path.display()
            ))
        })?;
        stats.documents += 1;
        each(number, document)?;
    }
    Ok(stats)
}

crate::spec_choice! {
    /// How a corpus's text is cleaned before tokenising.
    #[derive(Default)]
    pub enum Cleaning ("cleaning") {
        /// Transcribed speeches: [`clean`].
        #[default]
        Speech = "speech",
        /// Scanned print: [`clean_ocr`].
        Ocr = "ocr",
    }
}

impl Cleaning {
    /// Cleaned text split into sentences of tokens.
    pub fn sentences(self, text: &str) -> Vec<Vec<String>> {
        match self {
            Cleaning::Speech => sentences(&clean(text)),
            Cleaning::Ocr => sentences(&clean_ocr(text)),
        }
    }
}

/// Removes bracketed notes, audience annotations and page-navigation lines.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find(['[', '(']) {
        let bracket = rest[open..].starts_with('[');
        let close = if bracket { ']' } else { ')' };
        let Some(length) = rest[open..].find(close) else {
            break;
        };
        let inner = &rest[open + 1..open + length];
        let is_annotation = bracket || {
            let words = inner.split_whitespace().count();
            inner.trim_end().ends_with('.')
                && (1..=4).contains(&words)
                && inner.trim_start().starts_with(|c: char| c.is_uppercase())
        };
        out.push_str(&rest[..open]);
        if !is_annotation {
            out.push_str(&rest[open..=open + length]);
        }
        rest = &rest[open + length + 1..];
    }
    out.push_str(rest);
    out.lines()
        .filter(|line| !line.trim_start().starts_with("Jump to"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Cleans the OCR text of scanned journal pages (Philosophical Transactions), line by line:
/// - words hyphenated at a line end are joined ("electri-⏎city" → "electricity"; only when the
///   next line goes on in lower case, so "North-⏎America" stays two words);
/// - a catchword — the first word of the next page printed at the foot of a page, which the OCR
///   keeps — is dropped where a line ends with the word the next line begins with;
/// - page furniture is dropped: lines that are only a page number ("127", "[ 127 ]"), lines
///   without a lower-case letter of at most six words (running heads, "PHILOSOPHICAL
///   TRANSACTIONS.", section numerals), and table rows (two or more '|');
/// - long s and the printers' ligatures are spelled out ("ſ" → "s", "ﬁ" → "fi", …);
/// - tokens that contain a digit ("1st", "H2O", "4to") are dropped whole, so that no letter run
///   cut out of a number becomes a word;
/// - mathematics goes: the OCR writes formulas as LaTeX (`\( … \)`, `\[ … \]`, `$ … $`,
///   `$$ … $$`), whose command names ("frac", "alpha") and symbols would otherwise become words;
/// - bracketed notes "[…]" go, as in [`clean`], and markdown marks ('#', '*', '_') separate
///   nothing (the tokenizer drops them).
pub fn clean_ocr(text: &str) -> String {
    let mut spelled = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            'ſ' => spelled.push('s'),
            'ﬀ' => spelled.push_str("ff"),
            'ﬁ' => spelled.push_str("fi"),
            'ﬂ' => spelled.push_str("fl"),
            'ﬃ' => spelled.push_str("ffi"),
            'ﬄ' => spelled.push_str("ffl"),
            'ﬅ' | 'ﬆ' => spelled.push_str("st"),
            c => spelled.push(c),
        }
    }
    let spelled = without_math(&spelled);
    let is_furniture = |line: &str| {
        let trimmed = line.trim().trim_start_matches('#').trim();
        let number = trimmed.trim_start_matches('[').trim_end_matches(']').trim();
        (!number.is_empty() && number.chars().all(|c| c.is_ascii_digit()))
            || (!trimmed.is_empty()
                && !trimmed.chars().any(char::is_lowercase)
                && trimmed.split_whitespace().count() <= 6)
            || line.matches('|').count() >= 2
    };
    let lines: Vec<&str> = spelled.lines().filter(|l| !is_furniture(l)).collect();
    let mut joined = String::with_capacity(spelled.len());
    let (mut skip_word, mut continued) = (false, false);
    for (k, line) in lines.iter().enumerate() {
        let mut line: &str = line.trim_end();
        if continued {
            line = line.trim_start();
            continued = false;
        }
        if skip_word {
            // Drop the catchword repeated at the start of this line.
            let start = line.trim_start();
            let end = start
                .find(|c: char| !c.is_alphabetic())
                .unwrap_or(start.len());
            line = &start[end..];
            skip_word = false;
        }
        let next = lines.get(k + 1).map(|l| l.trim_start()).unwrap_or("");
        if let Some(rest) = line.strip_suffix('-')
            && !last_word(rest).is_empty()
            && next.starts_with(char::is_lowercase)
        {
            joined.push_str(rest);
            continued = true;
            continue;
        }
        let word = last_word(line.trim_end_matches(|c: char| !c.is_alphabetic()));
        let next_word_end = next
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(next.len());
        if !word.is_empty() && word == &next[..next_word_end] {
            skip_word = true;
        }
        joined.push_str(line);
        joined.push('\n');
    }
    let cleaned = clean(&joined);
    // Tokens with a digit in them go whole.
    let mut out = String::with_capacity(cleaned.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if !word.chars().any(|c| c.is_ascii_digit()) {
            out.push_str(word);
        }
        word.clear();
    };
    for c in cleaned.chars() {
        if c.is_alphanumeric() || c == '\'' || c == '’' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// `text` without LaTeX mathematics: `\( … \)`, `\[ … \]` and `$$ … $$` spans, `$ … $` spans
/// within a line, and any other `\command`. A span becomes a space, or a line break if it held
/// one; an unclosed opener is dropped alone.
fn without_math(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(['\\', '$']) {
        out.push_str(&rest[..at]);
        let from = &rest[at..];
        let (open, close) = if from.starts_with("\\(") {
            ("\\(", "\\)")
        } else if from.starts_with("\\[") {
            ("\\[", "\\]")
        } else if from.starts_with("$$") {
            ("$$", "$$")
        } else if from.starts_with('$') {
            ("$", "$")
        } else {
            // A command outside a span: the backslash and the letters after it.
            let letters = from[1..]
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(from.len() - 1);
            out.push(' ');
            rest = &from[1 + letters..];
            continue;
        };
        let body = &from[open.len()..];
        let end = body
            .find(close)
            .filter(|&e| open != "$" || !body[..e].contains('\n'));
        match end {
            Some(e) => {
                out.push(if body[..e].contains('\n') { '\n' } else { ' ' });
                rest = &body[e + close.len()..];
            }
            None => {
                out.push(' ');
                rest = body;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The run of letters at the end of `text`.
fn last_word(text: &str) -> &str {
    let start = text
        .char_indices()
        .rev()
        .find(|&(_, c)| !c.is_alphabetic())
        .map_or(0, |(p, c)| p + c.len_utf8());
    &text[start..]
}

/// Sentences of lower-case tokens.
pub fn sentences(text: &str) -> Vec<Vec<String>> {
    let mut sentences = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut token = String::new();
    let chars: Vec<char> = text.chars().collect();
    let flush = |token: &mut String, current: &mut Vec<String>| {
        if !token.is_empty() {
            current.push(std::mem::take(token));
        }
    };
    for (k, &c) in chars.iter().enumerate() {
        if c.is_alphabetic() {
            token.extend(c.to_lowercase());
        } else if (c == '\'' || c == '’')
            && !token.is_empty()
            && chars.get(k + 1).is_some_and(|n| n.is_alphabetic())
        {
            token.push('\'');
        } else {
            flush(&mut token, &mut current);
            if matches!(c, '.' | '!' | '?') && !current.is_empty() {
                sentences.push(std::mem::take(&mut current));
            }
        }
    }
    flush(&mut token, &mut current);
    if !current.is_empty() {
        sentences.push(current);
    }
    sentences
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_and_notes_are_removed_but_parentheticals_kept() {
        let text = "We will win. (Applause.) The budget (as you know) is [inaudible] balanced. \
                    (Laughter and applause.)\nJump to Part II | Part III\nEnd.";
        assert_eq!(
            clean(text),
            "We will win.  The budget (as you know) is  balanced. \nEnd."
        );
    }

    #[test]
    fn ocr_pages_lose_hyphens_catchwords_furniture_and_numbers() {
        let page = "PHILOSOPHICAL TRANSACTIONS.\n\
                    The electri-\ncity of the jar was com-\n  municated to North-\n\
                    America; ground nuts,\n[ 127 ]\nnuts, or pease.\n\
                    | 12 | 14 |\n## II.\nThe 2d ſample of H2O, 1st day, weighed 4 oz.\n";
        let cleaned = clean_ocr(page);
        let words: Vec<String> = sentences(&cleaned).concat();
        assert_eq!(
            words,
            [
                "the",
                "electricity",
                "of",
                "the",
                "jar",
                "was",
                "communicated",
                "to",
                "north",
                "america",
                "ground",
                "nuts",
                "or",
                "pease",
                "the",
                "sample",
                "of",
                "day",
                "weighed",
                "oz"
            ]
        );
        // Formulas go, whatever their delimiters.
        let formulas = "equal to $\\frac{1}{2} \\times BP$ (supposing \\( \\gamma \\) touched\n\
                        \\[ x^2 \\\\\n y \\] the $$a$$ arc \\alpha of $5 and";
        assert_eq!(
            sentences(&clean_ocr(formulas)).concat(),
            [
                "equal",
                "to",
                "supposing",
                "touched",
                "the",
                "arc",
                "of",
                "and"
            ]
        );
        // Ligatures are spelled out; lines may end in any character.
        assert_eq!(clean_ocr("ﬁrst ﬂame").trim(), "first flame");
        assert_eq!(
            clean_ocr("In the whole 29 — ½\nthe rest — é-\nnext").trim(),
            "In the whole  — ½\nthe rest — énext"
        );
    }

    #[test]
    fn documents_stream_with_their_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(
            &mut gz,
            b"{\"year\": 1800, \"text\": \"a b\", \"language\": \"en\"}\n\n\
              {\"year\": null, \"text\": null}\n{\"year\": 1801}\n",
        )
        .unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        let mut seen = Vec::new();
        let stats = for_each_document(&path, |line, d| {
            seen.push((line, d.year, d.language));
            Ok(())
        })
        .unwrap();
        assert_eq!(stats.documents, 3);
        assert_eq!(
            seen,
            vec![
                (1, Some(1800), Some("en".to_string())),
                (3, None, None),
                (4, Some(1801), None)
            ]
        );
        std::fs::write(&path, {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut gz, b"{\"year\": 1800, \"text\": \"a\"}\nnot json\n")
                .unwrap();
            gz.finish().unwrap()
        })
        .unwrap();
        let error = for_each_document(&path, |_, _| Ok(())).unwrap_err();
        assert!(error.to_string().contains("c.jsonl.gz:2:"), "{error}");
    }

    #[test]
    fn tokens_keep_inner_apostrophes_and_sentences_split() {
        let s = sentences("The Nation's 2 budgets don't balance! 'Tis over... Yes");
        assert_eq!(
            s,
            vec![
                vec!["the", "nation's", "budgets", "don't", "balance"],
                vec!["tis", "over"],
                vec!["yes"],
            ]
        );
    }
}
