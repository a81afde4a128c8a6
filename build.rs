//! Records the compiler version for run manifests, and the source graph for code fingerprints:
//! every file under `src/` embedded with the files it refers to (`crate::`, `super::`, `self::`
//! paths, child modules and names brought in by `use`), so a stage's fingerprint is the closure
//! of the code it reaches rather than a hand-kept list (see `src/pipeline/fingerprint.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SYMBREAK_RUSTC_VERSION={version}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src");

    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let src = manifest_dir.join("src");
    let mut files = Vec::new();
    collect(&src, &src, &mut files);
    files.sort();
    let known: BTreeSet<String> = files.iter().cloned().collect();
    let mut out = String::from(
        "/// Every source file (relative to `src/`), its text, and the files it refers to.\n\
         pub static SOURCES: &[(&str, &str, &[&str])] = &[\n",
    );
    for file in &files {
        let text = std::fs::read_to_string(src.join(file)).expect("source file is UTF-8");
        let refs = references(file, &text, &known);
        let list: Vec<String> = refs.iter().map(|r| format!("{r:?}")).collect();
        // Paths relative to the manifest folder of the crate being compiled, so a target folder
        // shared by two clones never embeds the other clone's sources.
        writeln!(
            out,
            "    ({file:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/src/{file}\")), &[{}]),",
            list.join(", ")
        )
        .expect("writing to a String");
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("sources.rs");
    std::fs::write(&dest, out).expect("writing the source graph");
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("src is readable")
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).expect("under src");
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// The module path of a file: `a/b.rs` and `a/b/mod.rs` → [a, b]; `lib.rs`, `main.rs` → [].
fn module_of(file: &str) -> Vec<String> {
    let stem = file.strip_suffix(".rs").unwrap_or(file);
    let mut parts: Vec<String> = stem.split('/').map(str::to_string).collect();
    if parts.last().is_some_and(|p| p == "mod") || stem == "lib" || stem == "main" {
        parts.pop();
    }
    parts
}

/// The file of the longest prefix of `path` that is a module with a file of its own.
fn resolve(path: &[String], known: &BTreeSet<String>) -> (String, usize) {
    for len in (1..=path.len()).rev() {
        let joined = path[..len].join("/");
        for candidate in [format!("{joined}.rs"), format!("{joined}/mod.rs")] {
            if known.contains(&candidate) {
                return (candidate, len);
            }
        }
    }
    ("lib.rs".to_string(), 0)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Semi,
    Star,
    Other,
}

/// Tokens of the code before its test module, with comments and literals dropped.
fn tokens(text: &str) -> Vec<Token> {
    let code = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && raw_string_at(&chars, i) {
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            j += 1;
            while j < chars.len() {
                if chars[j] == '"' && (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            i = j;
            out.push(Token::Other);
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push(Token::Other);
        } else if c == '\'' {
            // A char literal ('a', '\n', '\u{..}') or a lifetime ('a).
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
            out.push(Token::Other);
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() {
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                if chars[i] == '.' && !chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()) {
                    break;
                }
                i += 1;
            }
            out.push(Token::Other);
        } else if c == ':' && next == Some(':') {
            out.push(Token::PathSep);
            i += 2;
        } else {
            out.push(match c {
                '{' => Token::Open,
                '}' => Token::Close,
                ',' => Token::Comma,
                ';' => Token::Semi,
                '*' => Token::Star,
                c if c.is_whitespace() => {
                    i += 1;
                    continue;
                }
                _ => Token::Other,
            });
            i += 1;
        }
    }
    out
}

fn raw_string_at(chars: &[char], i: usize) -> bool {
    // `r"…"` or `r#"…"#`, not an identifier that ends in r.
    let prev_ident = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
    if prev_ident {
        return false;
    }
    let mut j = i + 1;
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    chars.get(j) == Some(&'"')
}

/// The files `file` refers to.
fn references(file: &str, text: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let module = module_of(file);
    let toks = tokens(text);
    // Names that stand for modules in this file: declared children, then `use` aliases.
    let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for w in toks.windows(3) {
        if let [Token::Ident(m), Token::Ident(child), Token::Semi] = w
            && m == "mod"
        {
            // `mod x;` in `a/b.rs` or `a/b/mod.rs` is the module a::b::x.
            let mut path = module.clone();
            path.push(child.clone());
            names.insert(child.clone(), path);
        }
    }
    let parent = |levels: usize| -> Vec<String> {
        let mut base = module.clone();
        for _ in 0..levels {
            base.pop();
        }
        base
    };
    let mut found = BTreeSet::new();
    let mut i = 0;
    while i < toks.len() {
        let in_use = i > 0 && toks[i - 1] == Token::Ident("use".into());
        let Token::Ident(head) = &toks[i] else {
            i += 1;
            continue;
        };
        let followed = toks.get(i + 1) == Some(&Token::PathSep);
        let base: Option<(Vec<String>, usize)> = match head.as_str() {
            "crate" if followed => Some((Vec::new(), i + 2)),
            "self" if followed => Some((module.clone(), i + 2)),
            "super" if followed => {
                let mut levels = 1;
                let mut j = i + 2;
                while toks.get(j) == Some(&Token::Ident("super".into()))
                    && toks.get(j + 1) == Some(&Token::PathSep)
                {
                    levels += 1;
                    j += 2;
                }
                Some((parent(levels), j))
            }
            name if followed && names.contains_key(name) => Some((names[name].clone(), i + 2)),
            name if in_use && names.contains_key(name) => Some((names[name].clone(), i + 1)),
            _ => None,
        };
        let Some((base, start)) = base else {
            i += 1;
            continue;
        };
        let mut out = Vec::new();
        let end = parse_tree(&toks, start, base, &mut out);
        for (path, alias) in out {
            let (resolved, used) = resolve(&path, known);
            if in_use && used == path.len() && !path.is_empty() {
                let name = alias.unwrap_or_else(|| path.last().cloned().unwrap_or_default());
                names.insert(name, path.clone());
            }
            found.insert(resolved);
        }
        i = end.max(i + 1);
    }
    found.remove(file);
    found
}

/// Parses a path tree starting at token `at` below `base`; pushes each leaf path with its
/// `as` alias; returns the index after the tree.
fn parse_tree(
    toks: &[Token],
    mut at: usize,
    mut base: Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>)>,
) -> usize {
    loop {
        match toks.get(at) {
            Some(Token::Ident(name)) => {
                if name == "self" {
                    // `{self, …}` names the base itself.
                    at += 1;
                    let alias = alias_at(toks, at);
                    if alias.is_some() {
                        at += 2;
                    }
                    out.push((base, alias));
                    return at;
                }
                base.push(name.clone());
                at += 1;
                if toks.get(at) == Some(&Token::PathSep) {
                    at += 1;
                    continue;
                }
                let alias = alias_at(toks, at);
                if alias.is_some() {
                    at += 2;
                }
                out.push((base, alias));
                return at;
            }
            Some(Token::Open) => {
                at += 1;
                loop {
                    match toks.get(at) {
                        Some(Token::Close) => return at + 1,
                        Some(Token::Comma) => at += 1,
                        None => return at,
                        _ => at = parse_tree(toks, at, base.clone(), out),
                    }
                }
            }
            Some(Token::Star) => {
                out.push((base, None));
                return at + 1;
            }
            _ => {
                out.push((base, None));
                return at;
            }
        }
    }
}

fn alias_at(toks: &[Token], at: usize) -> Option<String> {
    match (toks.get(at), toks.get(at + 1)) {
        (Some(Token::Ident(kw)), Some(Token::Ident(alias))) if kw == "as" => Some(alias.clone()),
        _ => None,
    }
}
