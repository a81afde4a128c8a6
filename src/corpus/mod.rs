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

use std::io::BufRead;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// One dated document.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Document {
    pub year: i32,
    pub text: String,
}

/// Reads gzip-compressed JSON Lines with at least the fields `year` and `text`, streaming.
pub fn read_jsonl_gz(path: &Path) -> Result<Vec<Document>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(file));
    let mut documents = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| Error::io("reading (gzip JSON Lines)", path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let document: Document = serde_json::from_str(&line).map_err(|e| {
            Error::Other(format!(
                "{}:{}: not a document record: {e}",
                path.display(),
                index + 1
            ))
        })?;
        documents.push(document);
    }
    Ok(documents)
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
