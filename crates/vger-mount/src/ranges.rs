//! `Range: bytes=...` (RFC 9110, section 14): single, multiple and suffix
//! ranges, resolved against a file's size.

/// An inclusive byte range of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }
}

/// What a Range header asks of a file of a given size.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable Range header: the whole file (an invalid header is
    /// ignored, as the RFC asks).
    Whole,
    /// The satisfiable ranges, in the order asked.
    Parts(Vec<ByteRange>),
    /// Valid, but no range overlaps the file: 416.
    Unsatisfiable,
}

/// More ranges than this in one request are answered with the whole file
/// (many small overlapping ranges are a known way to make a server work).
pub const MAX_RANGES: usize = 64;

pub fn parse(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Whole;
    };
    let mut parts = Vec::new();
    let mut count = 0;
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        count += 1;
        if count > MAX_RANGES {
            return RangeRequest::Whole;
        }
        let Some((first, last)) = item.split_once('-') else { return RangeRequest::Whole };
        let (first, last) = (first.trim(), last.trim());
        let range = if first.is_empty() {
            // A suffix: the last N bytes.
            let Ok(n) = last.parse::<u64>() else { return RangeRequest::Whole };
            if n == 0 || size == 0 {
                continue;
            }
            ByteRange { start: size.saturating_sub(n), end: size - 1 }
        } else {
            let Ok(start) = first.parse::<u64>() else { return RangeRequest::Whole };
            let end = if last.is_empty() {
                u64::MAX
            } else {
                match last.parse::<u64>() {
                    Ok(e) if e >= start => e,
                    _ => return RangeRequest::Whole,
                }
            };
            if start >= size {
                continue;
            }
            ByteRange { start, end: end.min(size - 1) }
        };
        parts.push(range);
    }
    if count == 0 {
        return RangeRequest::Whole;
    }
    if parts.is_empty() {
        RangeRequest::Unsatisfiable
    } else {
        RangeRequest::Parts(parts)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    #[test]
    fn single_multiple_and_suffix_ranges() {
        assert_eq!(parse(Some("bytes=0-9"), 100), RangeRequest::Parts(vec![r(0, 9)]));
        assert_eq!(parse(Some("bytes=90-"), 100), RangeRequest::Parts(vec![r(90, 99)]));
        assert_eq!(parse(Some("bytes=-10"), 100), RangeRequest::Parts(vec![r(90, 99)]));
        assert_eq!(parse(Some("bytes=-500"), 100), RangeRequest::Parts(vec![r(0, 99)]));
        assert_eq!(parse(Some("bytes=95-200"), 100), RangeRequest::Parts(vec![r(95, 99)]));
        assert_eq!(parse(Some("bytes=0-0, 5-9,-1"), 100), RangeRequest::Parts(vec![r(0, 0), r(5, 9), r(99, 99)]));
    }

    #[test]
    fn past_the_end_is_unsatisfiable_and_nonsense_is_ignored() {
        assert_eq!(parse(Some("bytes=100-"), 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse(Some("bytes=200-300, 150-"), 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse(Some("bytes=-0"), 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse(Some("bytes=0-"), 0), RangeRequest::Unsatisfiable);
        assert_eq!(parse(Some("bytes=5-1"), 100), RangeRequest::Whole);
        assert_eq!(parse(Some("items=0-1"), 100), RangeRequest::Whole);
        assert_eq!(parse(Some("bytes=a-b"), 100), RangeRequest::Whole);
        assert_eq!(parse(Some("bytes="), 100), RangeRequest::Whole);
        assert_eq!(parse(None, 100), RangeRequest::Whole);
        let many = format!("bytes={}", vec!["0-0"; MAX_RANGES + 1].join(","));
        assert_eq!(parse(Some(&many), 100), RangeRequest::Whole);
    }
}
