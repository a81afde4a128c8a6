//! IDX files (the MNIST format), optionally gzip-compressed.
//!
//! Layout: two zero bytes, a type byte (only 0x08, unsigned byte, is used by MNIST and accepted
//! here), the number of dimensions d, then d big-endian u32 sizes, then exactly the product of
//! the sizes in data bytes. Every check — gzip stream, magic, type, dimension count, size overflow,
//! truncation, trailing bytes — is an error that names the file; no input makes the reader panic
//! (a property test feeds it random and mutated bytes).

use std::io::Read;
use std::path::Path;

use flate2::read::MultiGzDecoder;
use ndarray::Array2;

use crate::error::{Error, Result};

/// Decompressed size limit: far above MNIST (47 MB), far below memory.
const MAX_DECODED: u64 = 1 << 30;

/// A parsed IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idx {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Parses IDX bytes (already decompressed).
pub fn parse(bytes: &[u8]) -> Result<Idx, String> {
    if bytes.len() < 4 {
        return Err(format!(
            "{} bytes is too short for an IDX header",
            bytes.len()
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(format!(
            "bad magic number {:02x}{:02x}{:02x}{:02x} (expected 0000 08 nn)",
            bytes[0], bytes[1], bytes[2], bytes[3]
        ));
    }
    if bytes[2] != 0x08 {
        return Err(format!(
            "element type 0x{:02x} is not supported (only 0x08, unsigned byte)",
            bytes[2]
        ));
    }
    let ndims = bytes[3] as usize;
    if ndims == 0 {
        return Err("zero dimensions".into());
    }
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(format!(
            "truncated header: {ndims} dimensions need {header} bytes, file has {}",
            bytes.len()
        ));
    }
    let dims: Vec<usize> = (0..ndims)
        .map(|k| {
            let b = &bytes[4 + 4 * k..8 + 4 * k];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("dimensions {dims:?} overflow"))?;
    let body = bytes.len() - header;
    if body < count {
        return Err(format!(
            "truncated: dimensions {dims:?} need {count} data bytes, file has {body}"
        ));
    }
    if body > count {
        return Err(format!(
            "{} unexpected trailing bytes after {count} data bytes",
            body - count
        ));
    }
    Ok(Idx {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Decompresses gzip data (recognised by its magic) or returns plain bytes as they are.
pub fn decode(bytes: &[u8]) -> Result<Vec<u8>, String> {
    if bytes.len() < 2 || bytes[0] != 0x1f || bytes[1] != 0x8b {
        return Ok(bytes.to_vec());
    }
    let mut out = Vec::new();
    MultiGzDecoder::new(bytes)
        .take(MAX_DECODED + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("corrupt gzip stream: {e}"))?;
    if out.len() as u64 > MAX_DECODED {
        return Err(format!("decompresses to more than {MAX_DECODED} bytes"));
    }
    Ok(out)
}

/// Reads and parses the IDX file at `path` (gzip or plain).
pub fn read(path: &Path) -> Result<Idx> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("reading", path, e))?;
    decode(&bytes)
        .and_then(|plain| parse(&plain))
        .map_err(|message| Error::unreadable("IDX file", path, message))
}

/// Images as rows of pixels scaled to [0, 1]: `count × (rows · cols)`.
pub fn read_images(path: &Path) -> Result<Array2<f64>> {
    let idx = read(path)?;
    if idx.dims.len() != 3 {
        return Err(Error::unreadable(
            "IDX file",
            path,
            format!(
                "expected 3 dimensions (images × rows × cols), found {:?}",
                idx.dims
            ),
        ));
    }
    let (n, pixels) = (idx.dims[0], idx.dims[1] * idx.dims[2]);
    Ok(Array2::from_shape_fn((n, pixels), |(i, j)| {
        f64::from(idx.data[i * pixels + j]) / 255.0
    }))
}

/// Labels as bytes.
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    let idx = read(path)?;
    if idx.dims.len() != 1 {
        return Err(Error::unreadable(
            "IDX file",
            path,
            format!("expected 1 dimension (labels), found {:?}", idx.dims),
        ));
    }
    Ok(idx.data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header(dims: &[u32]) -> Vec<u8> {
        let mut out = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out
    }

    #[test]
    fn parses_a_small_array() {
        let mut bytes = header(&[2, 3]);
        bytes.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
        let idx = parse(&bytes).unwrap();
        assert_eq!(idx.dims, [2, 3]);
        assert_eq!(idx.data, [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn rejects_truncation_trailing_bytes_and_bad_magic() {
        let mut bytes = header(&[2, 3]);
        bytes.extend_from_slice(&[1, 2, 3, 4, 5]);
        assert!(parse(&bytes).unwrap_err().starts_with("truncated"));
        bytes.extend_from_slice(&[6, 7]);
        assert!(parse(&bytes).unwrap_err().contains("trailing"));
        bytes[2] = 0x0d;
        assert!(parse(&bytes).unwrap_err().contains("element type"));
        bytes[0] = 1;
        assert!(parse(&bytes).unwrap_err().contains("magic"));
    }

    /// The vendored MNIST files have the documented shapes, label counts and pixel mean.
    #[test]
    fn vendored_mnist_has_the_documented_contents() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
        let labels = read_labels(&dir.join("t10k-labels-idx1-ubyte.gz")).unwrap();
        let mut counts = [0usize; 10];
        for l in &labels {
            counts[*l as usize] += 1;
        }
        assert_eq!(
            counts,
            [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
        );
        let images = read_images(&dir.join("t10k-images-idx3-ubyte.gz")).unwrap();
        assert_eq!(images.dim(), (10_000, 784));
        assert!(images.iter().all(|&p| (0.0..=1.0).contains(&p)));
    }

    #[test]
    fn a_truncated_gzip_file_is_an_error_naming_it() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
        let bytes = std::fs::read(dir.join("t10k-labels-idx1-ubyte.gz")).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let cut = tmp.path().join("cut.gz");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let err = read_labels(&cut).unwrap_err().to_string();
        assert!(err.contains("cut.gz"), "{err}");
        assert!(err.contains("gzip"), "{err}");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

        /// Random bytes, gzip-decoded or not, never make the reader panic.
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes).and_then(|plain| parse(&plain));
            let _ = parse(&bytes);
        }

        /// Bytes behind a gzip header exercise the decompressor: errors, never panics.
        #[test]
        fn gzip_like_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut data = vec![0x1f, 0x8b, 0x08, 0x00];
            data.extend(bytes);
            let _ = decode(&data).and_then(|plain| parse(&plain));
        }

        /// The real labels file with bytes overwritten at random places: refused or, where
        /// the damage misses everything checked, read with the right shape.
        #[test]
        fn corrupted_real_file_never_panics(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist/t10k-labels-idx1-ubyte.gz");
            let mut bytes = std::fs::read(path).unwrap();
            for (at, value) in edits {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            if let Ok(idx) = decode(&bytes).and_then(|plain| parse(&plain)) {
                prop_assert_eq!(idx.dims.iter().product::<usize>(), idx.data.len());
            }
        }

        /// A valid header followed by a body of the wrong length is refused, never mis-read.
        #[test]
        fn wrong_body_lengths_are_refused(
            dims in proptest::collection::vec(0u32..6, 1..4),
            delta in -3i64..4,
        ) {
            let count: usize = dims.iter().map(|&d| d as usize).product();
            let len = (count as i64 + delta).max(0) as usize;
            let mut bytes = header(&dims);
            bytes.extend(std::iter::repeat_n(7u8, len));
            let result = parse(&bytes);
            prop_assert_eq!(result.is_ok(), len == count);
        }
    }
}
